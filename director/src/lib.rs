//! Ferry Director: the vehicle inventory, manifest processing, assignments and per-vehicle
//! metadata (DESIGN.md). So far: the storage layer (the [`store::Store`] trait and its SQLite
//! implementation, [`store::SqliteStore`]) and per-vehicle metadata signing
//! ([`vehicle_metadata`]).

pub mod config;
pub mod daemon;
mod error;
pub mod fleet_ca;
pub mod http;
pub mod image_repo;
pub mod manifests;
pub mod model;
pub mod offline;
pub mod plan;
pub mod queue;
pub mod refresher;
pub mod root;
pub mod secret;
mod signing_lock;
pub mod store;
pub mod vehicle_metadata;

pub use error::{BoxError, Error, Fault, Result};
pub use store::{Durability, PgSettings, PgStore, SqliteStore, Store};
