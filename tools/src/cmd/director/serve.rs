//! `ferry director serve`: the Director's API and its metadata refresher, until SIGINT or
//! SIGTERM.

use crate::error::{Error, Result};
use ferry_director::config::DirectorConfig;
use ferry_director::daemon::Director;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry director serve --config ./director/director.toml
  RUST_LOG=info ferry director serve --config ./director/director.toml --json

On start the Director imports new N.root.json files from roots_dir (checking the chain),
refuses online keys the latest root does not authorise, and re-signs every vehicle's
metadata if the root or the keys changed since the last start.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// The director.toml to run.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print the listening address as a JSON line (for scripts that start it on port 0).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = DirectorConfig::load(&args.config)?;
    let director = Director::open(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = director.bind().await?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Usage(format!("cannot read the bound address: {e}")))?;
        if args.json {
            println!("{}", serde_json::json!({"listening": addr.to_string()}));
        } else {
            let scheme = if director.tls.is_some() {
                "https"
            } else {
                "http"
            };
            println!("director listening on {scheme}://{addr}");
        }
        director
            .serve(listener, ferry_http::shutdown_signal())
            .await?;
        Ok(())
    })
}
