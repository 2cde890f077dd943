//! `ferry relay`: the gateway relay for segregated networks (issue #20). It holds no key and
//! nobody trusts it: vehicles verify everything it serves.

use crate::error::Result;
use clap::Subcommand;

mod export;
mod import;
mod prefetch;
mod serve;
mod status;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve vehicles: an Image repository cache and the Director's device API, queueing
    /// manifests while the uplink is down.
    Serve(serve::Args),
    /// Cache size and hit rate, queue length and oldest entry, upstream reachability.
    Status(status::Args),
    /// Warm the running relay's cache with targets ahead of a campaign.
    Prefetch(prefetch::Args),
    /// Write the queued manifests to a directory (data diode, USB stick) and dequeue them.
    Export(export::Args),
    /// Load what `ferry admin relay pack` wrote into the cache (a site without an uplink).
    Import(import::Args),
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Serve(a) => serve::run(a),
        Command::Status(a) => status::run(a),
        Command::Export(a) => export::run(a),
        Command::Prefetch(a) => prefetch::run(a),
        Command::Import(a) => import::run(a),
    }
}
