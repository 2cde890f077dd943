use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo sign-role ./image-repo tier1-brakes --key tier1.pem --passphrase-file tier1.pass";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// The delegated role to sign.
    role: String,
    /// The supplier's private key.
    #[arg(long)]
    key: String,
    /// Passphrase file of an encrypted key.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let key = crate::keyfile::signer(&args.key, args.passphrase_file.as_deref())?;
    super::open(&args.dir)?.sign_role(&args.role, key.as_ref())?;
    println!("signed {} with key {}", args.role, key.key_id());
    Ok(())
}
