//! `ferry admin campaign`: one Image repository target for every ECU of a hardware id, across
//! the fleet or in the vehicles named. Each vehicle is planned on its own, all or nothing; a
//! vehicle refused (hardware, depends) does not stop the others.

use super::client::{print_json, table, AdminClient};
use crate::error::{Error, Result};

const EXAMPLE: &str = "Example:
  ferry admin campaign --name tcu-fw-7 --target tcu/fw-7.bin --hardware-id tcu-m4
  ferry admin campaign --name pilot --target os/rootfs-2.0.img --hardware-id ivi-a53 \\
      --vin WVW1 --vin WVW2 --json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Campaign name (recorded on every assignment).
    #[arg(long)]
    name: String,
    /// The Image repository target to install.
    #[arg(long)]
    target: String,
    /// Every ECU with this hardware id gets the target.
    #[arg(long)]
    hardware_id: String,
    /// Only these vehicles (repeatable); default: the whole fleet.
    #[arg(long = "vin")]
    vins: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &AdminClient, a: Args) -> Result<()> {
    let mut body = serde_json::json!({
        "name": a.name, "target_name": a.target, "hardware_id": a.hardware_id,
    });
    if !a.vins.is_empty() {
        body["vins"] = a.vins.clone().into();
    }
    // A campaign that refuses every vehicle answers 422 with the same per-vehicle report.
    let reply = match client.post("/campaigns", &body) {
        Ok(r) => r,
        Err(Error::Admin {
            status: Some(422),
            reason,
            ..
        }) => serde_json::from_str(&reason)
            .map_err(|_| Error::Usage(format!("campaign refused: {reason}")))?,
        Err(e) => return Err(e),
    };
    if a.json {
        print_json(&reply)?;
    } else {
        println!(
            "campaign {}: {} assigned, {} refused, {} failed",
            a.name, reply["assigned"], reply["refused"], reply["failed"]
        );
        let mut t = table(&["vin", "result", "assignments", "reason"]);
        for v in reply["vehicles"].as_array().into_iter().flatten() {
            let text = |k: &str| match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            t.add_row([
                text("vin"),
                text("result"),
                text("assignments"),
                text("reason"),
            ]);
        }
        println!("{t}");
    }
    if reply["assigned"].as_u64() == Some(0) {
        return Err(Error::Usage(format!(
            "campaign {} assigned nothing",
            a.name
        )));
    }
    Ok(())
}
