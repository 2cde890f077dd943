use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo remove-target ./image-repo apps/analytics-2.0.tar && ferry repo publish ./image-repo";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// Target path to remove.
    name: String,
}

pub fn run(args: Args) -> Result<()> {
    let role = super::open(&args.dir)?.remove_target(&args.name)?;
    println!("staged removal of {} from {role}", args.name);
    Ok(())
}
