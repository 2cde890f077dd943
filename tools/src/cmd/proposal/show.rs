use crate::error::{Error, Result};
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry proposal show proposal.json
  ferry proposal show proposal.json --json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    proposal: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let proposal = super::load_proposal(&args.proposal)?;
    let summary = proposal.summary()?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&summary).map_err(|e| Error::Usage(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{summary}");
    }
    Ok(())
}
