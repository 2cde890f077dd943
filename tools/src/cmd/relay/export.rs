//! `ferry relay export --config relay.toml --out DIR`: the queued manifests, written out for
//! a data diode or a USB stick, and taken off the queue.

use crate::error::{Error, Result};
use ferry_relay::db::Db;
use ferry_relay::RelayConfig;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry relay export --config /etc/ferry/relay.toml --out /media/usb/yard-7-2026-12-07
  # on the backend side:
  ferry admin relay import /media/usb/yard-7-2026-12-07

DIR must be new or empty. It holds index.json, index.mac (HMAC-SHA-256 of index.json keyed by
the relay's token, which the Director checks first) and manifests/*.json, each exactly as the
vehicle sent it (signed by its ECU keys); the import checks every file against the index, and
the Director checks every signature and refuses a manifest imported twice.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = RelayConfig::load(&args.config)?;
    let db = Db::open(&config.cache_dir)?;
    let name = config.upstream.name.clone();
    // The index's MAC is keyed with the token's secret, which the Director holds the hash of.
    let token = config.upstream.token.as_deref().ok_or_else(|| {
        Error::Usage(format!(
            "{}: [upstream] has no token_file; expected one: `ferry relay export` keys its MAC with the relay's token (`ferry admin relay add` issues it with a certificate too)",
            args.config.display()
        ))
    })?;
    let index = ferry_relay::carry::export(&db, token, &args.out)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "relay": name, "out": args.out, "manifests": index.manifests.len() })
        );
    } else {
        println!(
            "{} manifest(s) of relay {name} written to {}; carry it to the backend and run `ferry admin relay import {}`",
            index.manifests.len(),
            args.out.display(),
            args.out.display()
        );
    }
    Ok(())
}
