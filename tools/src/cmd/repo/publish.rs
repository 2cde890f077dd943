use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo publish ./image-repo --json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let report = super::open(&args.dir)?.publish()?;
    super::print_report(&report, args.json)
}
