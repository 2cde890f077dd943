//! `ferry admin receipts import`: the signed receipts a technician brings back from vehicles
//! that installed an offline-update bundle, uploaded to the Director (each recorded once).

use super::client::{print_json, AdminClient};
use crate::error::{io_at, Error, Result};
use std::path::{Path, PathBuf};

const EXAMPLE: &str = "Example:
  ferry admin receipts import /media/usb/ferry          # every receipts/*.json on the stick
  ferry admin receipts import WVW1-1.json WVW1-2.json --json";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Upload receipts: a bundle directory (its receipts/), a receipts directory, or files.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Receipts are small signed manifests; a file larger than this is not one.
const MAX_RECEIPT: u64 = 1 << 20;

pub fn run(client: &AdminClient, cmd: Command) -> Result<()> {
    let Command::Import(a) = cmd;
    let mut files = Vec::new();
    for p in &a.paths {
        collect(p, &mut files)?;
    }
    if files.is_empty() {
        return Err(Error::Usage(
            "no receipt (*.json) found in the paths given".into(),
        ));
    }
    let mut results = Vec::new();
    let mut refused = 0;
    for file in &files {
        let size = std::fs::metadata(file).map_err(io_at(file))?.len();
        let outcome = if size > MAX_RECEIPT {
            Err(Error::Usage(format!(
                "{size} bytes is too large for a receipt"
            )))
        } else {
            std::fs::read(file)
                .map_err(io_at(file))
                .and_then(|body| client.post_bytes("/receipts", body))
        };
        match outcome {
            Ok(reply) => {
                if !a.json {
                    println!(
                        "{}: recorded for {} (bundle {}, {})",
                        file.display(),
                        reply["vin"].as_str().unwrap_or("?"),
                        reply["bundle"].as_str().unwrap_or("?"),
                        reply["result"].as_str().unwrap_or("?")
                    );
                }
                results.push(serde_json::json!({"file": file, "recorded": reply}));
            }
            Err(e) => {
                refused += 1;
                if !a.json {
                    println!("{}: REFUSED: {e}", file.display());
                }
                results.push(serde_json::json!({"file": file, "refused": e.to_string()}));
            }
        }
    }
    if a.json {
        print_json(&serde_json::json!({ "receipts": results }))?;
    }
    if refused > 0 {
        return Err(Error::Check(format!(
            "{refused} of {} receipt(s) refused",
            files.len()
        )));
    }
    Ok(())
}

/// `path` itself, or the `*.json` in it, or in its `receipts/`.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let dir = if path.join("receipts").is_dir() {
        path.join("receipts")
    } else {
        path.to_owned()
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io_at(&dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    found.sort();
    out.extend(found);
    Ok(())
}
