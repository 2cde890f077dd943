//! `ferry director migrate`: move a Director's data from its SQLite file to PostgreSQL, so
//! that several Directors can share it (README "Scaling out").

use crate::error::{Error, Result};
use ferry_director::{PgSettings, PgStore};
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry director migrate --from director/data/director.db --to postgres://ferry@db:5432/ferry
  # then, in director.toml:  [database]  url = \"postgres://ferry@db:5432/ferry\"

Stop the Director first. Everything is copied in one transaction (vehicles, ECU keys,
manifests, assignments, signed metadata and their versions, roots, admin tokens, offline
bundles and receipts); every table is then counted on both sides. The target database
must be empty; the SQLite file is only read.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// The Director's SQLite database (data_dir/director.db).
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// The PostgreSQL database to fill: postgres://user@host:port/dbname (empty).
    #[arg(long, value_name = "URL")]
    to: String,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if !args.from.is_file() {
        return Err(Error::Usage(format!(
            "--from {}: no such file; expected the Director's SQLite database (data_dir/director.db)",
            args.from.display()
        )));
    }
    let store = PgStore::open(&PgSettings::new(args.to.clone()))?;
    let copied = store.import_sqlite(&args.from)?;
    if args.json {
        let value = serde_json::json!({
            "from": args.from,
            "to": store.target(),
            "tables": copied,
        });
        println!("{value:#}");
    } else {
        println!("copied {} to {}:", args.from.display(), store.target());
        for c in &copied {
            println!(
                "  {:<26} {:>9} rows (counted on both sides)",
                c.table, c.postgres
            );
        }
        println!("now set [database] url in director.toml and start the Director(s)");
    }
    Ok(())
}
