//! Ferry metadata core: the TUF metadata schema with Uptane's custom fields, canonical JSON,
//! threshold verification, the client's trusted set and the vehicle-side Uptane procedure
//! ([`uptane`]). No network, no database: bytes come in as parameters, time from a [`Clock`].

pub mod clock;
mod error;
pub mod expiry;
pub mod layout;
pub mod manifest;
pub mod metadata;
pub mod ostree_delta;
pub mod paths;
pub mod proposal;
pub mod provides;
pub mod refresh;
pub mod search;
pub mod strict_json;
mod target_name;
pub mod trusted;
pub mod uptane;
pub mod verify;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, Fault, Result};
pub use ferry_keys::cjson;
pub use search::{find_target, FoundTarget};
pub use target_name::TargetName;
pub use trusted::{TimestampUpdate, TrustedSet};
pub use verify::{Authority, Verified};
