use crate::error::{Error, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo list ./image-repo
  ferry repo list ./image-repo --json | jq '.[].name'";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let rows = super::open(&args.dir)?.list()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| Error::Usage(e.to_string()))?
        );
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "target",
        "role",
        "bytes",
        "domain",
        "version",
        "hardware ids",
        "sha256",
    ]);
    for row in rows {
        let custom = row.custom.unwrap_or_default();
        let field = |k: &str| {
            custom
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let hw = custom
            .get("hardwareIds")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let sha = row.sha256.unwrap_or_default();
        table.add_row([
            row.name,
            row.role,
            row.length.to_string(),
            field("domain"),
            field("version"),
            hw,
            sha.chars().take(12).collect(),
        ]);
    }
    println!("{table}");
    Ok(())
}
