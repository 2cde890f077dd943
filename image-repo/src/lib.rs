//! Ferry Image repository: an editor for a TUF repository of images with Uptane custom
//! metadata (supplier delegations, TAP 15 hashed bins, rotation, expiry refresh), and a static
//! HTTP server for it.

mod ceremony;
pub mod config;
mod delegation;
mod error;
mod init;
pub mod layout;
mod maintain;
mod repo;
pub mod serve;
mod status;
mod targets_edit;

pub use ceremony::ImportReport;
pub use delegation::DelegateOptions;
pub use error::{Error, Result};
pub use init::{
    init, InitOptions, Initialised, FIRST_ROOT_PROPOSAL, OFFLINE_ROLES, TOP_LEVEL_ROLES,
};
pub use repo::{PublishReport, Repository};
pub use targets_edit::{ListedTarget, TargetOptions};
