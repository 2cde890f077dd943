//! Ferry Primary ECU client. For now: a single-repository TUF updater (fetch with bounds,
//! verify through ferry-core, persist what was received, download targets with streaming
//! hash checks). The Uptane cycle over Director and Image repositories builds on it.

mod error;
pub mod fetch;
pub mod store;
pub mod updater;

pub use error::{Error, Result};
pub use fetch::{FetchPolicy, Fetcher, HttpFetcher};
pub use store::MetadataStore;
pub use updater::{init_trusted_root, Limits, Updater};
