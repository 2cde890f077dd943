//! Ferry Image repository: an editor for a TUF repository of images with Uptane custom
//! metadata (supplier delegations, TAP 15 hashed bins, rotation, expiry refresh), and a static
//! HTTP server for it.

pub mod config;
mod delegation;
mod error;
mod init;
pub mod layout;
mod maintain;
mod repo;
pub mod serve;
mod targets_edit;

pub use delegation::DelegateOptions;
pub use error::{Error, Result};
pub use init::{init, InitOptions, TOP_LEVEL_ROLES};
pub use repo::{PublishReport, Repository};
pub use targets_edit::{ListedTarget, TargetOptions};
