//! `ferry tuf-client`: a plain TUF client speaking the tuf-conformance client CLI, so Ferry's
//! verification engine can be run against any TUF repository and conformance suite.

use crate::error::{Error, Result};
use clap::{Args as ClapArgs, Subcommand};
use ferry_core::{Clock, SystemClock};
use ferry_primary::{init_trusted_root, FetchPolicy, HttpFetcher, MetadataStore, Updater};
use std::path::PathBuf;

const EXAMPLE: &str = "Examples:
  ferry tuf-client --metadata-dir /tmp/md init ./root.json
  ferry tuf-client --metadata-dir /tmp/md --metadata-url http://127.0.0.1:8000/metadata refresh
  ferry tuf-client --metadata-dir /tmp/md --metadata-url http://127.0.0.1:8000/metadata \\
      --target-name dir/file.txt --target-dir /tmp/targets \\
      --target-base-url http://127.0.0.1:8000/targets download

Exit status is 0 on success and 1 on any failure. The metadata dir holds only trusted
metadata under unversioned names, as the bytes received. The clock is the system clock.";

/// A TUF client (the tuf-conformance client CLI).
#[derive(Debug, ClapArgs)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Directory of trusted metadata (root.json, timestamp.json, ...).
    #[arg(long, global = true)]
    metadata_dir: Option<PathBuf>,
    /// Base URL of the repository's metadata.
    #[arg(long, global = true)]
    metadata_url: Option<String>,
    /// Target path to download (repeatable).
    #[arg(long = "target-name", global = true)]
    target_names: Vec<String>,
    /// Where downloaded targets are stored (and cached).
    #[arg(long, global = true)]
    target_dir: Option<PathBuf>,
    /// Base URL of the repository's targets.
    #[arg(long, global = true)]
    target_base_url: Option<String>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Trust TRUSTED_ROOT: copy it into the metadata dir (no network).
    Init { trusted_root: PathBuf },
    /// Update the top-level metadata per the TUF client workflow.
    Refresh,
    /// Refresh, then download and verify each --target-name into --target-dir.
    Download,
}

fn required<T: Clone>(value: &Option<T>, flag: &str) -> Result<T> {
    value
        .clone()
        .ok_or_else(|| Error::Usage(format!("{flag} is required for this command")))
}

pub fn run(args: Args) -> Result<()> {
    let metadata_dir = required(&args.metadata_dir, "--metadata-dir")?;
    let store = MetadataStore::new(&metadata_dir);
    if let Action::Init { trusted_root } = &args.action {
        let bytes = std::fs::read(trusted_root).map_err(crate::error::io_at(trusted_root))?;
        init_trusted_root(&store, &bytes)?;
        println!(
            "initialised {} with trusted root {}",
            metadata_dir.display(),
            trusted_root.display()
        );
        return Ok(());
    }
    let metadata_url = required(&args.metadata_url, "--metadata-url")?;
    let fetcher = HttpFetcher::new(FetchPolicy::default())?;
    // The clock is read once, through libc (so LD_PRELOAD faketime applies), and injected.
    let now = SystemClock.now();
    let mut updater = Updater::new(fetcher, store, &metadata_url, now);
    updater.refresh()?;
    if let Action::Download = args.action {
        let target_dir = required(&args.target_dir, "--target-dir")?;
        let base = required(&args.target_base_url, "--target-base-url")?;
        if args.target_names.is_empty() {
            return Err(Error::Usage(
                "download needs at least one --target-name".into(),
            ));
        }
        std::fs::create_dir_all(&target_dir).map_err(crate::error::io_at(&target_dir))?;
        for name in &args.target_names {
            let found = updater.target_info(name)?;
            let path = updater.download_target(&found, name, &base, &target_dir)?;
            println!("{name} -> {}", path.display());
        }
    }
    Ok(())
}
