//! `ferry repo root propose|import`: the Image repository's root changes through a ceremony.

use crate::error::{io_at, Result};
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  # Rotate the timestamp key (its private key goes to the repository host):
  ferry repo root propose ./image-repo --add-key timestamp=ts2.pub --remove-key timestamp=OLDID --out p.json
  # ... holders: ferry proposal sign p.json --key ... --out X.sig; ferry proposal merge ... --out 2.root.json
  ferry repo root import ./image-repo 2.root.json --key timestamp=ts2.key";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Write a proposal for the next root (signed by the current AND the new root threshold).
    Propose(ProposeArgs),
    /// Install a root signed through a ceremony, then publish what depends on it.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct ProposeArgs {
    dir: PathBuf,
    #[command(flatten)]
    changes: crate::cmd::root_changes::Args,
    /// Proposal file to write; never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct ImportArgs {
    dir: PathBuf,
    /// The merged root (`ferry proposal merge --out`).
    file: PathBuf,
    /// Private key file of an online role whose keys the new root changes (repeatable):
    /// ROLE=FILE for targets, snapshot or timestamp.
    #[arg(long = "key", value_name = "ROLE=FILE", value_parser = super::role_pair)]
    keys: Vec<(String, String)>,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Propose(a) => propose(a),
        Command::Import(a) => import(a),
    }
}

fn propose(a: ProposeArgs) -> Result<()> {
    let repo = super::open(&a.dir)?;
    let changes = a
        .changes
        .changes(ferry_core::Clock::now(&ferry_core::SystemClock))?;
    let proposal = repo.root_proposal(&changes)?;
    crate::cmd::proposal::write_new(&a.out, &proposal.to_bytes()?)?;
    print!("{}", proposal.summary()?);
    println!("wrote {}", a.out.display());
    Ok(())
}

fn import(a: ImportArgs) -> Result<()> {
    let bytes = std::fs::read(&a.file).map_err(io_at(&a.file))?;
    let mut keys: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for (role, file) in a.keys {
        match keys.iter_mut().find(|(r, _)| *r == role) {
            Some((_, files)) => files.push(file.into()),
            None => keys.push((role, vec![file.into()])),
        }
    }
    let report = super::open(&a.dir)?.import_root(&bytes, &keys)?;
    super::print_import(&report, a.json)
}
