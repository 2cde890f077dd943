use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo status ./image-repo          # exit 3: an offline role expires within [expiry] sign_before
  ferry repo status ./image-repo --json   # for monitoring";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let roles = super::open(&args.dir)?.status()?;
    crate::cmd::expiry_status::print(
        &format!("Image repository {}", args.dir.display()),
        &roles,
        args.json,
    )
}
