//! `ferry admin relay`: gateway relays (issue #20) as the Director sees them: register one
//! (its token written to a new 0600 file, its client certificate registered if given), list
//! them, revoke one.

use super::client::{print_json, table, AdminClient};
use crate::error::{io_at, Error, Result};
use std::path::PathBuf;

mod pack;

const EXAMPLE: &str = "Example:
  ferry admin relay add yard-7 --out yard-7.token     # then token_file = \"yard-7.token\" in relay.toml
  ferry director issue-cert --relay ship-1 --ca-cert fleet-ca.pem --ca-key fleet-ca.key --out-dir ship-1
  ferry admin relay add ship-1 --out ship-1.token --cert ship-1/cert.pem   # mutual TLS: cert/key in relay.toml
  ferry admin relay list --json
  ferry admin relay revoke yard-7
  ferry admin relay import /media/usb/yard-7-2026-12-07      # what `ferry relay export` wrote
  ferry admin relay pack --relay yard-7 --vin VIN-1 --vin VIN-2 \
      --image-repo https://images.example --out /media/usb/yard-7-pack   # then `ferry relay import`

A relay's token, or its registered certificate on a mutual-TLS Director, lets it speak for
vehicles on the device API (forwarding their requests and the manifests it queued while its
uplink was down); both are refused on the admin API. The token also keys the MAC over the
relay's exports (`ferry relay export`), so it is issued with a certificate too.";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Register a relay and write its token to a new file.
    Add(AddArgs),
    /// The registered relays.
    List(ListArgs),
    /// Refuse a relay's token from now on.
    Revoke(RevokeArgs),
    /// Feed the Director the manifests `ferry relay export` wrote, in their order.
    Import(ImportArgs),
    /// Write what a relay without an uplink needs for its vehicles (Director and Image
    /// repository metadata, the assigned targets) to a directory, for `ferry relay import`.
    Pack(pack::PackArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    dir: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The relay's name (letters, digits, '-', '_', '.').
    name: String,
    /// Write the token to this new file, mode 0600 (never overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Register this client certificate (PEM, `ferry director issue-cert --relay NAME`): on
    /// a mutual-TLS Director the relay is this certificate and no other.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    name: String,
}

pub fn run(client: &AdminClient, cmd: Command) -> Result<()> {
    match cmd {
        Command::Add(a) => {
            let mut request = serde_json::json!({ "name": a.name });
            if let Some(cert) = &a.cert {
                let pem = std::fs::read_to_string(cert).map_err(io_at(cert))?;
                request["cert"] = pem.into();
            }
            let reply = client.post("/relays", &request)?;
            let token = reply["token"].as_str().unwrap_or_default();
            ferry_keys::fs::write_secret(&a.out, format!("{token}\n").as_bytes()).map_err(
                |e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                        "--out {}: the file exists; expected a new path (a token file is never overwritten). The relay is registered: revoke it and add it under another name",
                        a.out.display()
                    )),
                    _ => io_at(&a.out)(e),
                },
            )?;
            let cert_sha256 = reply["cert_sha256"].as_str();
            if a.json {
                return print_json(
                    &serde_json::json!({ "name": a.name, "file": a.out, "cert_sha256": cert_sha256 }),
                );
            }
            println!(
                "relay {} registered; its token is in {} (token_file in relay.toml)",
                a.name,
                a.out.display()
            );
            if let Some(sha) = cert_sha256 {
                println!("its client certificate is registered: SHA-256 {sha}");
            }
            Ok(())
        }
        Command::List(a) => {
            let reply = client.get("/relays")?;
            if a.json {
                return print_json(&reply);
            }
            let mut t = table(&["relay", "registered", "revoked", "certificate SHA-256"]);
            for r in reply["relays"].as_array().into_iter().flatten() {
                t.add_row([
                    r["name"].as_str().unwrap_or_default(),
                    r["created_at"].as_str().unwrap_or_default(),
                    r["revoked_at"].as_str().unwrap_or("-"),
                    r["cert_sha256"].as_str().unwrap_or("-"),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        Command::Import(a) => import(client, a),
        Command::Pack(a) => pack::run(client, a),
        Command::Revoke(a) => {
            client.post(
                &format!("/relays/{}/revoke", a.name),
                &serde_json::json!({}),
            )?;
            println!(
                "relay {} revoked: its token and certificate are refused from now on",
                a.name
            );
            Ok(())
        }
    }
}

/// Percent-encode a query value (an RFC 3339 time has `+` and `:`).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn import(client: &AdminClient, a: ImportArgs) -> Result<()> {
    let export = ferry_relay::carry::read_export(&a.dir)?;
    // The Director checks the index's MAC (it holds the key) before any manifest is sent.
    client
        .post_bytes(
            &format!(
                "/relays/{}/exports/verify?mac={}",
                query_value(&export.index.relay),
                export.mac
            ),
            export.index_json.clone(),
        )
        .map_err(|e| {
            Error::Check(format!(
                "relay import: {} was not accepted, nothing sent: {e}",
                a.dir.join("index.json").display()
            ))
        })?;
    let (index, bodies) = (export.index, export.bodies);
    let mut results = Vec::new();
    let mut refused = 0;
    for (entry, body) in index.manifests.iter().zip(bodies) {
        let path = format!(
            "/relays/{}/manifests?vin={}&received_at={}",
            index.relay,
            query_value(&entry.vin),
            query_value(&entry.received_at)
        );
        match client.post_bytes(&path, body) {
            Ok(reply) => {
                if !a.json {
                    println!(
                        "{}: recorded for {} (id {})",
                        entry.file, entry.vin, reply["id"]
                    );
                }
                results.push(
                    serde_json::json!({"file": entry.file, "vin": entry.vin, "id": reply["id"]}),
                );
            }
            Err(e) => {
                refused += 1;
                if !a.json {
                    println!("{}: refused: {e}", entry.file);
                }
                results.push(serde_json::json!({"file": entry.file, "vin": entry.vin, "error": e.to_string()}));
            }
        }
    }
    if a.json {
        print_json(&serde_json::json!({ "relay": index.relay, "results": results }))?;
    }
    if refused > 0 {
        return Err(Error::Check(format!(
            "relay import: {refused} of {} manifest(s) refused (each named above); expected the Director to accept each once",
            index.manifests.len()
        )));
    }
    Ok(())
}
