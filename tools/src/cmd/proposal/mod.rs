//! `ferry proposal`: the key holder's side of a ceremony, the same for both repositories and
//! every offline role. A proposal is made by `ferry repo root|targets propose` or `ferry
//! director root propose`; holders `sign` it on their air-gapped hosts; anyone can see its
//! `status` and `merge` the signatures into signed metadata.

use crate::error::{io_at, Result};
use clap::Subcommand;
use ferry_core::proposal::{DetachedSignature, Proposal, MAX_PROPOSAL_BYTES, MAX_SIGNATURE_BYTES};
use std::io::Read;
use std::path::{Path, PathBuf};

mod merge;
mod show;
mod sign;
mod status;

const EXAMPLE: &str = "Example (root rotation, threshold 2):
  ferry repo root propose ./image-repo --add-key root=r4.pub --remove-key root=KEYID --out p.json
  ferry proposal show p.json                                   # on each holder's host
  ferry proposal sign p.json --key r1.key --out r1.sig          # holder 1
  ferry proposal sign p.json --key 'pkcs11:token=ferry;object=r2?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin' --out r2.sig
  ferry proposal status p.json r1.sig r2.sig
  ferry proposal merge p.json r1.sig r2.sig r4.sig --out 2.root.json
  ferry repo root import ./image-repo 2.root.json";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// What a proposal changes, and who must sign it.
    Show(show::Args),
    /// Sign a proposal with one key holder's key (on the holder's host).
    Sign(sign::Args),
    /// Who has signed, who is still needed, per threshold.
    Status(status::Args),
    /// Check every signature and threshold, and write the signed metadata.
    Merge(merge::Args),
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Show(a) => show::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Status(a) => status::run(a),
        Command::Merge(a) => merge::run(a),
    }
}

/// Read at most `limit` + 1 bytes: a hostile file cannot make us read gigabytes.
fn read_capped(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_at(path))?;
    Ok(bytes)
}

fn load_proposal(path: &Path) -> Result<Proposal> {
    let bytes = read_capped(path, MAX_PROPOSAL_BYTES)?;
    Proposal::from_bytes(&bytes).map_err(|e| in_file(path, e))
}

fn load_signatures(paths: &[PathBuf]) -> Result<Vec<DetachedSignature>> {
    paths
        .iter()
        .map(|p| {
            let bytes = read_capped(p, MAX_SIGNATURE_BYTES)?;
            DetachedSignature::from_bytes(&bytes).map_err(|e| in_file(p, e))
        })
        .collect()
}

/// A core error, with the file it came from.
fn in_file(path: &Path, e: ferry_core::Error) -> crate::error::Error {
    crate::error::Error::Usage(format!("{}: {e}", path.display()))
}

/// Write a new file; an existing one is never overwritten.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::cmd::director::root::write_new(path, bytes)
}
