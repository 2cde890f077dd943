//! Ferry metadata core: the TUF metadata schema with Uptane's custom fields, canonical JSON,
//! threshold verification and the client's trusted set. No network, no database, no clock:
//! bytes and the current time come in as parameters.

mod error;
pub mod manifest;
pub mod metadata;
pub mod paths;
pub mod provides;
pub mod refresh;
pub mod search;
mod target_name;
pub mod trusted;
pub mod uptane_checks;
pub mod verify;

pub use error::{Error, Result};
pub use ferry_keys::cjson;
pub use search::{find_target, FoundTarget};
pub use target_name::TargetName;
pub use trusted::{TimestampUpdate, TrustedSet};
pub use verify::{Authority, Verified};
