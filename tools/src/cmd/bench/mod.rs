//! `ferry bench`: benchmarks that print their result as a ratio to a baseline measured in the
//! same run.

use crate::error::Result;
use clap::Subcommand;

mod bundle;
mod director;
mod install;
mod python;
mod relay;
mod repo;
mod report;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Edit-and-publish and client verification on a 100,000-target repository with hashed
    /// bins, against python-tuf 7.0.1 on a flat repository.
    Repo(repo::Args),
    /// Director check-ins per second of simulated vehicles over HTTP on loopback, against
    /// the ceiling its per-check-in signature verifications allow on this machine.
    Director(director::Args),
    /// Verify, download and install of a 1 GiB image to a Secondary over loopback, against
    /// max(sha256, a durable copy) of the same bytes; and the peak RSS of both processes.
    Install(install::Args),
    /// Install of a 1 GiB image from an offline-update bundle (Uptane PURE-2) on a Secondary,
    /// with the backend stopped, against sha256 then a durable copy of the same bytes; and the
    /// peak RSS of both processes.
    Bundle(bundle::Args),
    /// A target cached by the gateway relay served over loopback, against nginx serving the
    /// same file in the same run.
    Relay(relay::Args),
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Repo(a) => repo::run(a),
        Command::Director(a) => director::run(a),
        Command::Install(a) => install::run(a),
        Command::Bundle(a) => bundle::run(a),
        Command::Relay(a) => relay::run(a),
    }
}
