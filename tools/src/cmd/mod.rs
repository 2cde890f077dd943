use crate::error::Result;
use clap::{Parser, Subcommand};

pub mod key;
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
    /// A plain TUF client (tuf-conformance CLI): init, refresh, download.
    TufClient(tuf_client::Args),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Key(cmd) => key::run(cmd),
        Command::TufClient(args) => tuf_client::run(args),
    }
}
