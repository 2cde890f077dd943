use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo sign-role ./image-repo tier1-brakes --key tier1.key --passphrase-file tier1.pass
  # with the key on a PKCS#11 token (the PIN in pin.txt):
  ferry repo sign-role ./image-repo tier1-brakes --passphrase-file pin.txt \\
    --key 'pkcs11:token=tier1;object=brakes?module-path=/usr/lib/softhsm/libsofthsm2.so'";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// The delegated role to sign.
    role: String,
    /// The supplier's signing key: a PKCS#8 key file or a pkcs11: URI.
    #[arg(long, value_name = "KEYSOURCE")]
    key: String,
    /// Passphrase file of an encrypted key file, or the user PIN file for a pkcs11: URI
    /// that carries no PIN.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let key = crate::keyfile::signer(&args.key, args.passphrase_file.as_deref())?;
    super::open(&args.dir)?.sign_role(&args.role, key.as_ref())?;
    println!("signed {} with key {}", args.role, key.key_id());
    Ok(())
}
