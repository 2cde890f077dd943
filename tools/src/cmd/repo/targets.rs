//! `ferry repo targets propose|import`: top-level targets signed by offline keys.

use crate::error::{io_at, Result};
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo add-target ./image-repo app-2.0.bin --name ivi/app-2.0.bin --hardware-id ivi-a53
  ferry repo targets propose ./image-repo --out targets-proposal.json
  # ... two of three targets key holders: ferry proposal sign targets-proposal.json --key ... --out X.sig
  ferry proposal merge targets-proposal.json t1.sig t3.sig --out 5.targets.json
  ferry repo targets import ./image-repo 5.targets.json   # publishes targets, snapshot, timestamp";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Write a proposal of the staged top-level targets for its offline keys to sign.
    Propose(ProposeArgs),
    /// Install top-level targets signed through a ceremony and publish.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct ProposeArgs {
    dir: PathBuf,
    /// Proposal file to write; never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct ImportArgs {
    dir: PathBuf,
    /// The merged targets (`ferry proposal merge --out`).
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Propose(a) => {
            let proposal = super::open(&a.dir)?.targets_proposal()?;
            crate::cmd::proposal::write_new(&a.out, &proposal.to_bytes()?)?;
            print!("{}", proposal.summary()?);
            println!("wrote {}", a.out.display());
            Ok(())
        }
        Command::Import(a) => {
            let bytes = std::fs::read(&a.file).map_err(io_at(&a.file))?;
            let report = super::open(&a.dir)?.import_targets(&bytes)?;
            super::print_import(&report, a.json)
        }
    }
}
