//! The gateway relay for segregated networks (issue #20; DESIGN.md "Offline updates and the
//! relay"). It holds no key and nobody trusts it: vehicles verify every byte it serves as if
//! it came from the backend.
//!
//! - Image repository side ([`mirror`]): a caching mirror. Targets and versioned metadata are
//!   immutable, fetched upstream once for every waiting vehicle, resumed when a fetch was cut,
//!   served from the cache with Range/If-Range/ETag by `ferry repo serve`'s own code, evicted
//!   least recently used past `cache_max`. Unversioned metadata (timestamp, root probes) is
//!   passed through, and served from the last copy when upstream does not answer.
//! - Director side ([`device`]): the device API passed through with the relay's own token
//!   and the vehicle's forwarded; while upstream is down, metadata from the last copy seen
//!   for that vehicle and manifests queued durably ([`db`]) and forwarded in arrival order,
//!   exactly once ([`forward`]).
//! - No uplink at all: queued manifests carried out ([`carry`]), metadata and targets carried
//!   in ([`pack`]).

pub mod carry;
pub mod config;
pub mod db;
pub mod device;
mod error;
pub mod forward;
pub mod mirror;
pub mod pack;
pub mod server;
pub mod status;
pub mod upstream;

pub use config::RelayConfig;
pub use error::{Error, Result};
pub use server::{serve, Relay};
