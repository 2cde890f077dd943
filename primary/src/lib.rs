//! Ferry Primary ECU: the Uptane update cycle over the Director and the Image repository
//! ([`cycle`]), built on a single-repository TUF updater (fetch with bounds, verify through
//! ferry-core, persist what was received, download targets with streaming hash checks). The
//! primary's own ECU runs the Secondary library in-process ([`own_ecu`]); Secondaries are
//! reached over HTTP ([`distribute`]); an image streams to its ECUs as it downloads
//! ([`stream`]). Without a network, a PURE-2 bundle on a stick installs the same way
//! ([`offline`]).

pub mod cli;
pub mod config;
pub mod cycle;
pub mod distribute;
mod error;
pub mod fetch;
pub mod offline;
pub mod own_ecu;
pub mod progress;
pub mod reboot_wait;
pub mod repos;
pub mod status;
pub mod store;
pub mod stream;
pub mod updater;

pub use config::Config;
pub use cycle::{run_cycle, CycleError, CycleReport, CycleResult};
pub use error::{Error, Result};
pub use fetch::{FetchPolicy, Fetcher, HttpFetcher, ReadSink, SinkStop};
pub use offline::{run_offline, OfflineError, OfflineOptions, OfflineReport};
pub use store::MetadataStore;
pub use updater::{init_trusted_root, Limits, Updater};
