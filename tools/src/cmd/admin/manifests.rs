//! `ferry admin manifests prune`: retention of stored manifests.

use super::client::{print_json, AdminClient};
use crate::error::Result;

const EXAMPLE: &str = "Example:
  ferry admin manifests prune --older-than 90d
  ferry admin manifests prune --older-than 1y --json

Deletes manifests received longer ago than --older-than, accepted or refused, except the one
holding each ECU's latest report (what `ferry admin status` shows is never pruned).";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Delete manifests older than a duration, keeping each ECU's latest report.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Age past which manifests go (e.g. 90d, 12w, 1y).
    #[arg(long, value_name = "DURATION")]
    older_than: String,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &AdminClient, cmd: Command) -> Result<()> {
    match cmd {
        Command::Prune(a) => {
            let reply = client.post(
                "/manifests/prune",
                &serde_json::json!({ "older_than": a.older_than }),
            )?;
            if a.json {
                return print_json(&reply);
            }
            println!(
                "{} manifest(s) received before {} deleted; each ECU's latest report kept",
                reply["deleted"],
                reply["before"].as_str().unwrap_or_default()
            );
            Ok(())
        }
    }
}
