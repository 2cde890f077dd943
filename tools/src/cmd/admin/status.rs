//! `ferry admin status VIN`: the vehicle's ECUs and every assignment with its status.

use super::client::{from_value, print_json, table, AdminClient};
use crate::error::Result;
use ferry_director::model::{Assignment, Vehicle};
use std::collections::BTreeSet;

const EXAMPLE: &str = "Example:
  ferry admin status WVW1
  ferry admin status WVW1 --json | jq '.assignments[] | select(.status == \"failed\")'";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    vin: String,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &AdminClient, a: Args) -> Result<()> {
    let path = format!("/vehicles/{}/status", a.vin);
    let reply = status(client, &a.vin)?;
    if a.json {
        return print_json(&reply);
    }
    let vehicle: Vehicle = from_value(reply["vehicle"].clone(), &path)?;
    let assignments: Vec<Assignment> = from_value(reply["assignments"].clone(), &path)?;
    super::vehicle::print_vehicle(&vehicle);
    print_assignments(&assignments, &queued_ids(&reply));
    print_receipts(&reply["offline_receipts"]);
    Ok(())
}

/// Offline installs the vehicle reported through a receipt (PURE-2 bundles).
fn print_receipts(receipts: &serde_json::Value) {
    let Some(list) = receipts.as_array().filter(|l| !l.is_empty()) else {
        return;
    };
    let mut t = table(&["receipt", "bundle", "result", "ecus", "received"]);
    for r in list {
        let ecus: Vec<String> = r["outcome"]["ecus"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(serial, e)| {
                let target = e["target"].as_str().unwrap_or("-");
                format!("{serial}: {} {target}", e["result"].as_str().unwrap_or("?"))
            })
            .collect();
        t.add_row([
            r["id"].to_string(),
            format!(
                "{} v{}",
                r["bundle"].as_str().unwrap_or("?"),
                r["outcome"]["version"]
            ),
            format!(
                "{} (applied offline, reported late)",
                r["result"].as_str().unwrap_or("?")
            ),
            ecus.join("; "),
            r["received_at"].as_str().unwrap_or("-").to_owned(),
        ]);
    }
    println!("{t}");
}

/// The ids of the assignments a [`status`] reply marks queued.
pub fn queued_ids(reply: &serde_json::Value) -> BTreeSet<i64> {
    reply["assignments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["queued"] == true)
        .filter_map(|a| a["id"].as_i64())
        .collect()
}

/// The Director's view of vehicle `vin`: `vehicle` (ECUs with their last reports) and
/// `assignments`.
pub fn status(client: &AdminClient, vin: &str) -> Result<serde_json::Value> {
    client.get(&format!("/vehicles/{vin}/status"))
}

/// The assignment table `assign` and `status` print. A pending assignment in `queued` waits
/// behind another of its ECU (the Director serves one per ECU at a time): shown as
/// "pending (queued)", so the operator does not take it for the one about to install.
pub fn print_assignments(assignments: &[Assignment], queued: &BTreeSet<i64>) {
    let mut t = table(&["id", "ecu", "target", "status", "campaign", "detail"]);
    for x in assignments {
        let status = serde_json::to_value(x.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let status = if queued.contains(&x.id) {
            format!("{status} (queued)")
        } else {
            status
        };
        t.add_row([
            x.id.to_string(),
            x.ecu_serial.clone(),
            x.target_name.clone(),
            status,
            x.campaign.clone().unwrap_or_default(),
            x.detail.clone(),
        ]);
    }
    println!("{t}");
}
