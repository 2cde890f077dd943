//! `ferry admin vehicle add|list|show|revoke-token|remove`.

use super::client::{from_value, print_json, table, AdminClient};
use crate::error::{io_at, Error, Result};
use crate::keyfile;
use ferry_director::model::{NewEcu, NewVehicle, Vehicle};
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  export FERRY_DIRECTOR_URL=http://127.0.0.1:8000 FERRY_ADMIN_TOKEN=$(cat ops.token)
  ferry admin vehicle add --vin WVW1 --primary ivi-1:ivi-a53:ivi.pub.pem \\
      --secondary tcu-1:tcu-m4:tcu.pub.pem --out wvw1.device-token
  ferry admin vehicle list
  ferry admin vehicle show WVW1 --json
  ferry admin vehicle revoke-token WVW1 --out wvw1.device-token.new   # the old token is refused at once
  ferry admin vehicle remove WVW1      # nothing is served to it any more; its history stays";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Register a vehicle and its ECUs; prints the vehicle's device token (shown once).
    Add(AddArgs),
    /// List vehicles with their state and assignment counts.
    List(ListArgs),
    /// One vehicle: each ECU's installed image, provides, attacks and last report.
    Show(ShowArgs),
    /// Give a vehicle a new device token; the one it had is refused from now on.
    RevokeToken(TokenArgs),
    /// Remove a vehicle: its token and metadata go, active assignments are cancelled, its
    /// history (manifests, assignments, reports) stays.
    Remove(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    vin: String,
    /// Write the new token to this new file, mode 0600, instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[arg(long)]
    vin: String,
    /// The primary ECU as SERIAL:HARDWARE_ID:KEY_FILE (public key PEM, certificate or TUF
    /// key JSON is not needed: any `ferry key pub` input works).
    #[arg(long, value_name = "SERIAL:HWID:FILE")]
    primary: String,
    /// A secondary ECU, SERIAL:HARDWARE_ID:KEY_FILE; repeatable.
    #[arg(long, value_name = "SERIAL:HWID:FILE")]
    secondary: Vec<String>,
    /// Write the device token to this new file, mode 0600, instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    vin: String,
    #[arg(long)]
    json: bool,
}

fn ecu(spec: &str, primary: bool) -> Result<NewEcu> {
    let mut parts = spec.splitn(3, ':');
    let (Some(serial), Some(hw), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::Usage(format!(
            "{spec:?}: expected SERIAL:HARDWARE_ID:KEY_FILE"
        )));
    };
    let path = PathBuf::from(file);
    if !path.exists() {
        return Err(io_at(&path)(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        )));
    }
    Ok(NewEcu {
        serial: serial.to_owned(),
        hardware_id: hw.to_owned(),
        public_key: keyfile::public_key(&path, None)?,
        primary,
    })
}

pub fn run(client: &AdminClient, cmd: Command) -> Result<()> {
    match cmd {
        Command::Add(a) => {
            let mut ecus = vec![ecu(&a.primary, true)?];
            for s in &a.secondary {
                ecus.push(ecu(s, false)?);
            }
            let vehicle = NewVehicle { vin: a.vin, ecus };
            let reply = add(client, &vehicle)?;
            let what = format!("registered {}", vehicle.vin);
            hand_over_token(reply, a.out.as_deref(), a.json, &what)
        }
        Command::RevokeToken(a) => {
            let path = format!("/vehicles/{}/device-token", a.vin);
            let reply = client.post(&path, &serde_json::json!({}))?;
            let what = format!("{}: new device token, the previous one is refused", a.vin);
            hand_over_token(reply, a.out.as_deref(), a.json, &what)
        }
        Command::Remove(a) => {
            let path = format!("/vehicles/{}", a.vin);
            let reply = client.delete(&path)?;
            if a.json {
                return print_json(&reply);
            }
            println!(
                "removed {} ({} active assignment(s) cancelled; its history is kept)",
                a.vin, reply["cancelled"]
            );
            Ok(())
        }
        Command::List(a) => {
            let reply = all_vehicles(client)?;
            if a.json {
                return print_json(&reply);
            }
            let vehicles: Vec<Vehicle> = from_value(reply, "/vehicles")?;
            let mut t = table(&[
                "vin",
                "ecus",
                "state",
                "pending",
                "in flight",
                "installed",
                "failed",
                "last seen",
            ]);
            for v in vehicles {
                let s = &v.status;
                let state = match v.removed_at {
                    Some(at) => format!("removed {}", at.to_rfc3339()),
                    None => format!("{:?}", s.state),
                };
                t.add_row([
                    v.vin.clone(),
                    v.ecus.len().to_string(),
                    state,
                    s.pending.to_string(),
                    s.in_flight.to_string(),
                    s.installed.to_string(),
                    s.failed.to_string(),
                    v.last_seen
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "never".into()),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        Command::Show(a) => {
            let path = format!("/vehicles/{}", a.vin);
            let reply = client.get(&path)?;
            if a.json {
                return print_json(&reply);
            }
            let v: Vehicle = from_value(reply, &path)?;
            print_vehicle(&v);
            Ok(())
        }
    }
}

/// Print or write the `device_token` of `reply` (shown once): to `out` (a new file, mode
/// 0600) when given, else to stdout; `--json` prints the reply (without the token when it went
/// to a file).
fn hand_over_token(
    mut reply: serde_json::Value,
    out: Option<&std::path::Path>,
    json: bool,
    what: &str,
) -> Result<()> {
    let token = reply["device_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(out) = out {
        ferry_keys::fs::write_secret(out, format!("{token}\n").as_bytes()).map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                    "--out {}: the file exists; expected a new path (a token file is never overwritten); the token was issued: run revoke-token for another",
                    out.display()
                )),
                _ => io_at(out)(e),
            }
        })?;
        if let Some(fields) = reply.as_object_mut() {
            fields.remove("device_token");
            fields.insert("file".into(), serde_json::json!(out));
        }
        if json {
            return print_json(&reply);
        }
        println!(
            "{what}; device token written to {} (mode 0600)",
            out.display()
        );
        return Ok(());
    }
    if json {
        return print_json(&reply);
    }
    eprintln!("{what}; its device token (shown once):");
    println!("{token}");
    Ok(())
}

/// Register `vehicle`; the Director's reply holds its `device_token` (shown once).
pub fn add(client: &AdminClient, vehicle: &NewVehicle) -> Result<serde_json::Value> {
    let body = serde_json::to_value(vehicle)
        .map_err(|e| Error::Usage(format!("cannot encode the vehicle: {e}")))?;
    client.post("/vehicles", &body)
}

/// Every vehicle, page by page (the API pages by VIN).
fn all_vehicles(client: &AdminClient) -> Result<serde_json::Value> {
    const PAGE: usize = 1000;
    let mut all = Vec::new();
    let mut path = format!("/vehicles?limit={PAGE}");
    loop {
        let page = match client.get(&path)? {
            serde_json::Value::Array(page) => page,
            other => {
                return Err(Error::Usage(format!(
                    "/vehicles: expected a list, got {other}"
                )))
            }
        };
        let last = page
            .last()
            .and_then(|v| v["vin"].as_str())
            .map(str::to_owned);
        let full = page.len() == PAGE;
        all.extend(page);
        match last {
            Some(vin) if full => path = format!("/vehicles?limit={PAGE}&after={vin}"),
            _ => return Ok(serde_json::Value::Array(all)),
        }
    }
}

/// The per-ECU table `vehicle show` and `status` print.
pub fn print_vehicle(v: &Vehicle) {
    println!(
        "{}: {:?}, last seen {}",
        v.vin,
        v.status.state,
        v.last_seen
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".into())
    );
    let mut t = table(&[
        "ecu",
        "hardware",
        "role",
        "installed",
        "provides",
        "attacks",
        "last install",
        "reported",
    ]);
    for e in &v.ecus {
        let role = if e.primary { "primary" } else { "secondary" };
        let (installed, provides, attacks, last, at) = match &e.reported {
            None => Default::default(),
            Some(r) => (
                r.installed_image.filepath.clone(),
                r.provides
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                r.attacks_detected.clone(),
                r.last_install
                    .as_ref()
                    .map(|l| format!("{} {}: {}", l.target, l.result, l.detail))
                    .unwrap_or_default(),
                r.reported_at.to_rfc3339(),
            ),
        };
        t.add_row([
            e.serial.clone(),
            e.hardware_id.clone(),
            role.into(),
            installed,
            provides,
            attacks,
            last,
            at,
        ]);
    }
    println!("{t}");
}
