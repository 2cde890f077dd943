use crate::error::{Error, Result};
use std::path::PathBuf;

const EXAMPLE: &str = "Example (a systemd timer or cron job every hour):
  ferry repo refresh /srv/image-repo --within 6h";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// Re-sign roles expiring within this window. Keep it shorter than the roles' lifetimes.
    #[arg(long, default_value = "6h")]
    within: String,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let within = super::duration(&args.within).map_err(Error::Usage)?;
    let report = super::open(&args.dir)?.refresh(within)?;
    super::print_report(&report, args.json)
}
