//! `ferry admin manifests list|prune`: a vehicle's stored manifests, and their retention.

use super::client::{print_json, AdminClient};
use crate::error::Result;

const EXAMPLE: &str = "Example:
  ferry admin manifests list WVW1 --limit 20 --json
  ferry admin manifests prune --older-than 90d
  ferry admin manifests prune --older-than 1y --json

Deletes manifests received longer ago than --older-than, accepted or refused, except the one
holding each ECU's latest report (what `ferry admin status` shows is never pruned).";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// A vehicle's latest manifests, newest first: id, time received, nonce, verdict, digest.
    List(ListArgs),
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

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    vin: String,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &AdminClient, cmd: Command) -> Result<()> {
    match cmd {
        Command::List(a) => {
            let reply = client.get(&format!("/vehicles/{}/manifests?limit={}", a.vin, a.limit))?;
            if a.json {
                return print_json(&reply);
            }
            let mut t = super::client::table(&["id", "received", "verdict", "nonce", "reason"]);
            for m in reply.as_array().into_iter().flatten() {
                t.add_row([
                    m["id"].to_string(),
                    m["received_at"].as_str().unwrap_or_default().to_owned(),
                    m["verdict"].as_str().unwrap_or_default().to_owned(),
                    m["nonce"].as_str().unwrap_or("-").to_owned(),
                    m["reason"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
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
