//! `ferry director root propose`: the Director's next root as a ceremony proposal, with the
//! same options as `ferry repo root propose`.

use crate::error::{io_at, Error, Result};
use ferry_core::proposal::{Proposal, RepositoryKind};
use ferry_core::{Clock, SystemClock};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ProposeArgs {
    /// The Director's config: the proposal replaces its latest root (stored or placed in
    /// roots_dir and not yet imported).
    #[arg(long, value_name = "FILE", required_unless_present = "previous")]
    config: Option<PathBuf>,
    /// Or the current root file itself (on a host without the Director's database).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    previous: Option<PathBuf>,
    #[command(flatten)]
    changes: crate::cmd::root_changes::Args,
    /// Proposal file to write; never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn propose(a: ProposeArgs) -> Result<()> {
    let now = SystemClock.now();
    let previous = match (&a.config, &a.previous) {
        (_, Some(file)) => std::fs::read(file).map_err(io_at(file))?,
        (Some(config), None) => latest_root(config)?,
        (None, None) => return Err(Error::Usage("give --config or --previous".into())),
    };
    let current = ferry_director::root::read_root_file(&previous, now)?;
    let mut changes = a.changes.changes(now)?;
    if changes.expires.is_none() {
        changes.expires = Some(ferry_core::metadata::Expires::after(
            now,
            chrono::Duration::days(365),
        ));
    }
    let next = changes.apply(&current)?;
    let proposal = Proposal::root(RepositoryKind::Director, &next, Some(&previous))?;
    crate::cmd::proposal::write_new(&a.out, &proposal.to_bytes()?)?;
    print!("{}", proposal.summary()?);
    println!("wrote {}", a.out.display());
    Ok(())
}

/// The newest root the Director knows: stored, or placed in roots_dir for its next start.
fn latest_root(config: &Path) -> Result<Vec<u8>> {
    let (config, store) = super::open_store(config)?;
    let (mut version, mut bytes) = store
        .latest_root()?
        .map(|(v, b)| (v, Some(b)))
        .unwrap_or((0, None));
    for (v, path) in ferry_director::daemon::root_files(&config.roots_dir)? {
        if v > version {
            version = v;
            bytes = Some(std::fs::read(&path).map_err(io_at(&path))?);
        }
    }
    bytes.ok_or_else(|| {
        Error::Usage(format!(
            "the Director has no root yet (none stored, none in {}); make root v1 with `ferry director root init`",
            config.roots_dir.display()
        ))
    })
}
