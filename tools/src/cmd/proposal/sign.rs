use crate::error::Result;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  # On the holder's air-gapped host; the summary is printed before anything is signed.
  ferry proposal sign proposal.json --key root-2.key --passphrase-file root-2.pass --out root-2.sig
  ferry proposal sign proposal.json --out hsm.sig \\
      --key 'pkcs11:token=ferry;object=root-3?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin.txt'";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    proposal: PathBuf,
    /// The holder's key: a PKCS#8 file or a pkcs11: URI.
    #[arg(long, value_name = "KEYSOURCE")]
    key: String,
    /// Passphrase file of an encrypted key file (without it, a terminal prompts).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Signature file to write; never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let proposal = super::load_proposal(&args.proposal)?;
    print!("{}", proposal.summary()?);
    let signer = crate::keyfile::signer(&args.key, args.passphrase_file.as_deref())?;
    let sig = proposal.sign(signer.as_ref())?;
    super::write_new(&args.out, &sig.to_bytes()?)?;
    println!(
        "signed with key {} (signature checked against the metadata's key); wrote {}",
        sig.keyid,
        args.out.display()
    );
    Ok(())
}
