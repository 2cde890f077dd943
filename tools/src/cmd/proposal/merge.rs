use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry proposal merge proposal.json r1.sig r2.sig new1.sig new2.sig --out 2.root.json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    proposal: PathBuf,
    /// Every signature file to merge.
    #[arg(required = true)]
    signatures: Vec<PathBuf>,
    /// Signed metadata to write; never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let proposal = super::load_proposal(&args.proposal)?;
    let sigs = super::load_signatures(&args.signatures)?;
    let bytes = proposal.merge(&sigs)?;
    super::write_new(&args.out, &bytes)?;
    println!(
        "wrote {} v{} signed by {} key(s) to {}",
        proposal.role.name(),
        proposal.version()?,
        sigs.iter()
            .map(|s| &s.keyid)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        args.out.display()
    );
    Ok(())
}
