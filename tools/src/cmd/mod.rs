use crate::error::Result;
use clap::{Parser, Subcommand};

pub mod admin;
pub mod bench;
pub mod director;
pub mod key;
pub mod repo;
pub mod tuf_client;

/// Ferry: Uptane-secured over-the-air updates.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate and inspect signing keys.
    #[command(subcommand)]
    Key(key::Command),
    /// Build, sign, delegate, rotate, refresh and serve an Image repository.
    #[command(subcommand)]
    Repo(repo::Command),
    /// Call the Director's admin API: vehicles, assignments, status.
    Admin(admin::Args),
    /// Set up, run and operate a Director.
    #[command(subcommand)]
    Director(director::Command),
    /// A plain TUF client (tuf-conformance CLI): init, refresh, download.
    TufClient(tuf_client::Args),
    /// Benchmarks, each printed as a ratio to a baseline measured in the same run.
    #[command(subcommand)]
    Bench(bench::Command),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Key(cmd) => key::run(cmd),
        Command::TufClient(args) => tuf_client::run(args),
        Command::Repo(cmd) => repo::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Director(cmd) => director::run(cmd),
        Command::Admin(args) => admin::run(args),
    }
}
