use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry key gen --type ed25519 --out new-timestamp.pem --insecure-plaintext
  ferry repo rotate ./image-repo timestamp --new-key new-timestamp.pem
  ferry repo rotate ./image-repo root --new-key r1.pem --new-key r2.pem --threshold 2";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// root, targets, snapshot or timestamp.
    role: String,
    /// New key (repeatable): an unencrypted private key file, or a pkcs11: URI (the key stays
    /// on its token; ferry-repo.toml names the URI).
    #[arg(long = "new-key", required = true, value_name = "KEYSOURCE")]
    new_keys: Vec<PathBuf>,
    #[arg(long, default_value_t = 1)]
    threshold: u32,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let report =
        super::open(&args.dir)?.rotate_sources(&args.role, &args.new_keys, args.threshold)?;
    super::print_report(&report, args.json)
}
