//! `ferry admin assign`: name Image repository targets for ECUs of one vehicle. The Director
//! copies length, hashes and custom fields from the Image repository's signed metadata and
//! refuses a target whose hardwareIds or depends do not fit the ECU.

use super::client::{from_value, print_json, AdminClient};
use crate::error::{Error, Result};
use ferry_director::model::Assignment;

const EXAMPLE: &str = "Example:
  ferry admin assign WVW1 --target ivi-1=os/rootfs-2.0.img --target ivi-1=apps/nav-3.1.tar \\
      --campaign spring-2027
  ferry admin assign WVW1 --target tcu-1=tcu/fw-7.bin --json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    vin: String,
    /// ECU_SERIAL=TARGET_NAME; repeatable. Targets one ECU depends on may come in any order:
    /// the Director orders them (an os before the app that depends on it).
    #[arg(long = "target", value_name = "ECU=TARGET", required = true)]
    targets: Vec<String>,
    /// A campaign name to group assignments by.
    #[arg(long)]
    campaign: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &AdminClient, a: Args) -> Result<()> {
    let mut pairs = Vec::new();
    for t in &a.targets {
        let (ecu, name) = t.split_once('=').ok_or_else(|| {
            Error::Usage(format!("--target {t:?}: expected ECU_SERIAL=TARGET_NAME"))
        })?;
        pairs.push((ecu, name));
    }
    let path = format!("/vehicles/{}/assignments", a.vin);
    let reply = assign(client, &a.vin, &pairs, a.campaign.as_deref())?;
    if a.json {
        return print_json(&reply);
    }
    let assignments: Vec<Assignment> = from_value(reply, &path)?;
    println!(
        "{} assignment(s) added to {}, in install order:",
        assignments.len(),
        a.vin
    );
    // The reply lists the new assignments, not which of them wait behind another of their
    // ECU; the vehicle's status says, as `ferry admin status` shows it. A token that may
    // assign may read, so this fails only with the Director gone: the table is then printed
    // without the queue.
    let queued = match super::status::status(client, &a.vin) {
        Ok(status) => super::status::queued_ids(&status),
        Err(e) => {
            eprintln!(
                "note: which assignments are queued is unknown ({e}); see ferry admin status"
            );
            Default::default()
        }
    };
    super::status::print_assignments(&assignments, &queued);
    Ok(())
}

/// Assign (ECU serial, target name) pairs to vehicle `vin`: the Director's reply (the
/// assignments in install order), or its refusal naming the failed check.
pub fn assign(
    client: &AdminClient,
    vin: &str,
    pairs: &[(&str, &str)],
    campaign: Option<&str>,
) -> Result<serde_json::Value> {
    let targets: Vec<serde_json::Value> = pairs
        .iter()
        .map(|(ecu, name)| serde_json::json!({"ecu_serial": ecu, "target_name": name}))
        .collect();
    let mut body = serde_json::json!({ "targets": targets });
    if let Some(c) = campaign {
        body["campaign"] = c.into();
    }
    client.post(&format!("/vehicles/{vin}/assignments"), &body)
}
