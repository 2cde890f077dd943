//! Ferry Secondary ECU (DESIGN.md): receives a metadata bundle from the Primary and verifies
//! it, fully (both repositories, the default) or partially (Director targets by a pinned key);
//! receives the image streamed and checked against the verified target; installs it through
//! its domain's installer; keeps its trusted metadata, release counters, installed image and
//! provides in its own SQLite state; signs version reports carrying the Primary's nonce.
//! The same library runs in the `ferry-secondary` daemon ([`http`]) and in-process in the
//! Primary for its own ECU.

pub mod cli;
pub mod config;
pub mod ecu;
mod error;
pub mod http;
pub mod image;
pub mod install;
pub mod mender;
pub mod report;
mod state;
pub mod verify;
pub mod wire;

pub use config::{Config, Verification as VerificationMode};
pub use ecu::{status_at_rest, Ecu, ImageTicket, Info, Installed, Sender, Status};
pub use error::{Error, Fault, Result};
pub use install::{InstallJob, Installer, Installers};
pub use state::refusals::NetworkRefusal;
pub use state::{InstalledImage, Outcome, Repo};
pub use verify::{partial_offline_role, Assignment, Bundle, OfflineBundle, RepoBundle};
