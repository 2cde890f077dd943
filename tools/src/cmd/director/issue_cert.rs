//! `ferry director issue-cert`: a device certificate for a registered vehicle (the VIN in the
//! subject CN and a `urn:ferry:vin:` URI SAN), an operator certificate for admin clients on a
//! TLS listener, or a gateway relay's client certificate (registered afterwards with `ferry
//! admin relay add NAME --cert`).

use super::ca::{write_cert, CaFiles};
use crate::error::{Error, Result};
use ferry_core::{Clock, SystemClock};
use ferry_director::fleet_ca::write_private_pem;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry director issue-cert --config director/director.toml --ca-cert fleet-ca.pem \\
      --ca-key fleet-ca.key --passphrase-file ca.pass --vin WVW1 --out-dir certs/WVW1
  ferry director issue-cert --ca-cert fleet-ca.pem --ca-key fleet-ca.key \\
      --passphrase-file ca.pass --operator alice --out-dir certs/alice
  ferry director issue-cert --ca-cert fleet-ca.pem --ca-key fleet-ca.key \\
      --passphrase-file ca.pass --relay yard-7 --out-dir certs/yard-7";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// The Director's config: a --vin must be registered there.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["operator", "relay"])]
    config: Option<PathBuf>,
    #[command(flatten)]
    ca: CaFiles,
    /// The vehicle to certify.
    #[arg(
        long,
        conflicts_with_all = ["operator", "relay"],
        required_unless_present_any = ["operator", "relay"]
    )]
    vin: Option<String>,
    /// An operator (admin API client) to certify instead.
    #[arg(long, conflicts_with = "relay")]
    operator: Option<String>,
    /// A gateway relay to certify instead (CN `relay:NAME`); then register the certificate
    /// with `ferry admin relay add NAME --cert cert.pem`.
    #[arg(long)]
    relay: Option<String>,
    #[arg(long, default_value = "2years", value_parser = humantime::parse_duration)]
    valid_for: std::time::Duration,
    /// Writes cert.pem and key.pem (0600) here; created if missing, files never overwritten.
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let ca = a.ca.load()?;
    let now = SystemClock.now();
    let issued = match (&a.vin, &a.operator, &a.relay) {
        (Some(vin), None, None) => {
            let config = a.config.as_deref().ok_or_else(|| {
                Error::Usage("--vin needs --config (the vehicle must be registered)".into())
            })?;
            let (_, store) = super::open_store(config)?;
            if store.get_vehicle(vin)?.is_none() {
                return Err(ferry_director::Error::UnknownVehicle { vin: vin.clone() }.into());
            }
            ca.issue_device_cert(vin, now, a.valid_for)?
        }
        (None, Some(name), None) => ca.issue_operator_cert(name, now, a.valid_for)?,
        (None, None, Some(name)) => ca.issue_relay_cert(name, now, a.valid_for)?,
        _ => {
            return Err(Error::Usage(
                "give one of --vin VIN, --operator NAME or --relay NAME".into(),
            ))
        }
    };
    std::fs::create_dir_all(&a.out_dir).map_err(crate::error::io_at(&a.out_dir))?;
    let (cert, key) = (a.out_dir.join("cert.pem"), a.out_dir.join("key.pem"));
    write_private_pem(&key, &issued.key_pem, None)?;
    write_cert(&cert, &issued.cert_pem)?;
    if a.json {
        println!("{}", serde_json::json!({"cert": cert, "key": key}));
    } else {
        println!(
            "certificate {} and key {} written",
            cert.display(),
            key.display()
        );
    }
    Ok(())
}
