use crate::error::{Error, Result};
use ferry_core::proposal::SignatureVerdict;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry proposal status proposal.json holder-*.sig
  ferry proposal status proposal.json holder-*.sig --json   # exit 0 either way; see \"complete\"";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    proposal: PathBuf,
    /// Signature files collected so far.
    signatures: Vec<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let proposal = super::load_proposal(&args.proposal)?;
    let sigs = super::load_signatures(&args.signatures)?;
    let status = proposal.status(&sigs)?;
    if args.json {
        let mut value = serde_json::to_value(&status).map_err(|e| Error::Usage(e.to_string()))?;
        value["complete"] = status.complete().into();
        println!("{value:#}");
        return Ok(());
    }
    for (file, verdict) in args.signatures.iter().zip(&status.signatures) {
        let text = match verdict {
            SignatureVerdict::Counted { keyid } => format!("counted (key {keyid})"),
            SignatureVerdict::OtherProposal { keyid, signed_for } => format!(
                "REFUSED: key {keyid} signed another proposal ({signed_for}); this one is {}",
                status.digest
            ),
            SignatureVerdict::NotRequested { keyid } => {
                format!("REFUSED: key {keyid} is not one this proposal asks for")
            }
            SignatureVerdict::Invalid { keyid } => {
                format!("REFUSED: the signature by key {keyid} does not verify")
            }
        };
        println!("{}: {text}", file.display());
    }
    for r in &status.requirements {
        println!(
            "{}: {} of {} {}",
            r.label,
            r.signed.len(),
            r.threshold,
            if r.met() { "(met)" } else { "(NOT met)" }
        );
        for k in &r.signed {
            println!("  signed:  {k}");
        }
        if !r.met() {
            for k in &r.missing {
                println!("  missing: {k}");
            }
        }
    }
    println!(
        "{}",
        if status.complete() {
            "complete: `ferry proposal merge` can write the signed metadata"
        } else {
            "incomplete"
        }
    );
    Ok(())
}
