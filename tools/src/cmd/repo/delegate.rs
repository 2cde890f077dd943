use crate::error::Result;
use ferry_image_repo::DelegateOptions;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  # the supplier sends you its public key, e.g. as TUF key JSON (the key id goes to stderr):
  ferry key pub tier1.key --passphrase-file tier1.pass > tier1.pub.json
  ferry repo delegate ./image-repo tier1-brakes --key tier1.pub.json --paths 'brakes/*' --terminating
  # the supplier then signs its role: ferry repo sign-role ./image-repo tier1-brakes --key tier1.key";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// Name of the delegated role.
    role: String,
    /// Supplier public key (repeatable): TUF key JSON (as `ferry key pub` prints it), SPKI PEM,
    /// an X.509 certificate, a private key file, or a pkcs11: URI.
    #[arg(long = "key", required = true)]
    keys: Vec<String>,
    /// Target path patterns delegated (shell-style per path segment; repeatable).
    #[arg(long = "paths", required = true, num_args = 1..)]
    paths: Vec<String>,
    #[arg(long, default_value_t = 1)]
    threshold: u32,
    /// Stop the search at this role for matching paths.
    #[arg(long)]
    terminating: bool,
}

pub fn run(args: Args) -> Result<()> {
    let keys = args
        .keys
        .iter()
        .map(|k| crate::keyfile::public_key_of(k, None))
        .collect::<Result<Vec<_>>>()?;
    let mut repo = super::open(&args.dir)?;
    repo.delegate(
        &args.role,
        &DelegateOptions {
            keys,
            paths: args.paths,
            threshold: args.threshold,
            terminating: args.terminating,
        },
    )?;
    println!(
        "delegated {} to {}; it must be signed with `ferry repo sign-role` before publish",
        args.role, args.role
    );
    Ok(())
}
