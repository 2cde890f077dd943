//! Ferry Director: the vehicle inventory, manifest processing, assignments and per-vehicle
//! metadata (DESIGN.md). This crate so far holds the storage layer: the [`store::Store`]
//! trait and its SQLite implementation, [`store::SqliteStore`].

mod error;
pub mod model;
pub mod secret;
pub mod store;

pub use error::{BoxError, Error, Fault, Result};
pub use store::{SqliteStore, Store};
