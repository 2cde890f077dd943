use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo bins ./image-repo --count 1024 && ferry repo publish ./image-repo";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// Number of bins (a power of two).
    #[arg(long)]
    count: u64,
    /// Online key for the bins (default: generated into DIR/keys/bins.pem).
    #[arg(long)]
    key: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut repo = super::open(&args.dir)?;
    repo.make_bins(args.count, args.key.as_deref())?;
    println!(
        "staged {} hashed bins; run `ferry repo publish` to sign them",
        args.count
    );
    Ok(())
}
