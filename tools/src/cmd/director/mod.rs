//! `ferry director`: set up, run and operate a Director (DESIGN.md "Servers and ports").

use crate::error::Result;
use clap::Subcommand;

mod ca;
// init, root and token are also steps of the demo's world (crate::world).
pub(crate) mod init;
mod issue_cert;
mod migrate;
pub(crate) mod root;
mod root_propose;
mod serve;
mod status;
pub(crate) mod token;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a Director directory: online keys, director.toml, data and roots folders.
    Init(init::Args),
    /// Make, rotate and import the director root (signed offline with `ferry key` files).
    #[command(subcommand)]
    Root(root::Command),
    /// The root's version, expiry, keys and thresholds; exit 3 when a root ceremony is due.
    Status(status::Args),
    /// Run the Director: device API, admin API, and the metadata refresher.
    Serve(serve::Args),
    /// Make the fleet CA and the Director's TLS server certificate.
    #[command(subcommand)]
    Ca(ca::Command),
    /// Issue a device certificate for a registered vehicle (or an operator certificate).
    IssueCert(issue_cert::Args),
    /// Create, list and revoke admin API tokens (run on the Director's host).
    #[command(subcommand)]
    Token(token::Command),
    /// Copy a Director's SQLite database into PostgreSQL (then several Directors can share it).
    Migrate(migrate::Args),
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Init(a) => init::run(a),
        Command::Root(c) => root::run(c),
        Command::Serve(a) => serve::run(a),
        Command::Status(a) => status::run(a),
        Command::Token(c) => token::run(c),
        Command::Ca(c) => ca::run(c),
        Command::IssueCert(a) => issue_cert::run(a),
        Command::Migrate(a) => migrate::run(a),
    }
}

/// Open the store named by a director config (SQLite, or PostgreSQL with `[database] url`).
fn open_store(
    config: &std::path::Path,
) -> Result<(
    ferry_director::config::DirectorConfig,
    std::sync::Arc<dyn ferry_director::Store>,
)> {
    let config = ferry_director::config::DirectorConfig::load(config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(crate::error::io_at(&config.data_dir))?;
    let store = ferry_director::store::open(
        &config.database,
        &config.database(),
        std::sync::Arc::new(ferry_core::SystemClock),
    )?;
    Ok((config, store))
}
