//! `ferry bench`: benchmarks that print their result as a ratio to a baseline measured in the
//! same run.

use crate::error::Result;
use clap::Subcommand;

mod python;
mod repo;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Edit-and-publish and client verification on a 100,000-target repository with hashed
    /// bins, against python-tuf 7.0.1 on a flat repository.
    Repo(repo::Args),
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Repo(a) => repo::run(a),
    }
}
