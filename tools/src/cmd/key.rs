//! `ferry key`: generate signing keys and show public keys in TUF form.
use crate::error::{io_at, Error, Result};
use clap::{Args, Subcommand, ValueEnum};
use ferry_keys::{KeyKind, PrivateKey, PublicKey};
use std::path::PathBuf;

/// Key commands.
#[derive(Debug, Subcommand)]
#[command(after_help = KEY_EXAMPLE)]
pub enum Command {
    /// Generate a signing key and write it as PKCS#8 PEM (mode 0600).
    #[command(after_help = GEN_EXAMPLE)]
    Gen(GenArgs),
    /// Print the TUF public key JSON and key id of a private or public key file.
    #[command(after_help = PUB_EXAMPLE)]
    Pub(PubArgs),
    /// Print the TUF public key JSON and key id of an X.509 certificate's key.
    #[command(after_help = FROM_CERT_EXAMPLE)]
    FromCert(FromCertArgs),
}

const KEY_EXAMPLE: &str = "\
Example:
  ferry key gen --type ed25519 --out root.key --passphrase-file root.pass
  ferry key pub root.key --passphrase-file root.pass --json";

const GEN_EXAMPLE: &str = "\
Example:
  # An offline root key, encrypted with the passphrase in root.pass:
  ferry key gen --type ed25519 --out root.key --passphrase-file root.pass
  # An online timestamp key for a server that has no one to type a passphrase:
  ferry key gen --type ecdsa-p256 --out timestamp.key --insecure-plaintext --json";

const PUB_EXAMPLE: &str = "\
Example:
  ferry key pub root.key --passphrase-file root.pass
  ferry key pub timestamp.pub.pem --json";

const FROM_CERT_EXAMPLE: &str = "\
Example:
  ferry key from-cert primary-ecu.crt.pem --json";

/// Key types offered for new keys. RSA-2048 is left out: it is accepted for verification but
/// new keys should have a longer life than 2048-bit RSA has left.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GenType {
    #[value(name = "ed25519")]
    Ed25519,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
}

impl From<GenType> for KeyKind {
    fn from(t: GenType) -> KeyKind {
        match t {
            GenType::Ed25519 => KeyKind::Ed25519,
            GenType::Rsa3072 => KeyKind::Rsa3072,
            GenType::Rsa4096 => KeyKind::Rsa4096,
            GenType::EcdsaP256 => KeyKind::EcdsaP256,
        }
    }
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Key type.
    #[arg(long = "type", value_name = "TYPE")]
    kind: GenType,
    /// File to create; an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Encrypt the key with the passphrase in this file (one trailing newline is ignored).
    /// This or --insecure-plaintext is required.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Write the key unencrypted, protected only by its file mode.
    #[arg(long)]
    insecure_plaintext: bool,
    /// Print {"keyid", "public", "path"} as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PubArgs {
    /// A private key (PKCS#8 PEM, plaintext or encrypted) or a public key (SPKI PEM).
    file: PathBuf,
    /// Passphrase file for an encrypted private key (one trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Print {"keyid", "public"} as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct FromCertArgs {
    /// PEM certificate; in a chain, the first certificate (the leaf) is used.
    cert: PathBuf,
    /// Print {"keyid", "public"} as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Gen(args) => gen(args),
        Command::Pub(args) => public(args),
        Command::FromCert(args) => from_cert(args),
    }
}

fn gen(args: GenArgs) -> Result<()> {
    let passphrase = match (&args.passphrase_file, args.insecure_plaintext) {
        (Some(file), false) => Some(crate::keyfile::read_passphrase(file)?),
        (None, true) => None,
        (Some(_), true) => {
            return Err(Error::Usage(
                "give either --passphrase-file or --insecure-plaintext, not both".into(),
            ))
        }
        (None, false) => {
            return Err(Error::Usage(
                "a new key must be protected: give --passphrase-file FILE to encrypt it, \
                 or --insecure-plaintext to write it unencrypted"
                    .into(),
            ))
        }
    };
    // Check before the slow part (RSA generation): a taken path is refused either way.
    if args.out.exists() {
        return Err(ferry_keys::Error::KeyFileExists { path: args.out }.into());
    }
    let key = PrivateKey::generate(args.kind.into())?;
    key.write_file(&args.out, passphrase.as_ref().map(|p| p.as_slice()))?;
    tracing::info!(keyid = %key.key_id(), path = %args.out.display(), "wrote new key");
    if args.json {
        let out = serde_json::json!({
            "keyid": key.key_id(),
            "public": key.public_key(),
            "path": args.out.display().to_string(),
        });
        println!("{out}");
    } else {
        println!("wrote {} key to {}", key.kind(), args.out.display());
        print_key(key.public_key())?;
    }
    Ok(())
}

fn public(args: PubArgs) -> Result<()> {
    if crate::keyfile::pem_label(&args.file)?.as_deref() == Some("CERTIFICATE") {
        return Err(Error::Usage(format!(
            "{} is a certificate: use `ferry key from-cert`",
            args.file.display()
        )));
    }
    let key = crate::keyfile::public_key(&args.file, args.passphrase_file.as_deref())?;
    output(&key, args.json)
}

fn from_cert(args: FromCertArgs) -> Result<()> {
    let pem = std::fs::read(&args.cert).map_err(io_at(&args.cert))?;
    let key = PublicKey::from_certificate_pem(&pem)?;
    output(&key, args.json)
}

fn output(key: &PublicKey, json: bool) -> Result<()> {
    if json {
        let out = serde_json::json!({ "keyid": key.key_id()?, "public": key });
        println!("{out}");
        Ok(())
    } else {
        print_key(key)
    }
}

fn print_key(key: &PublicKey) -> Result<()> {
    println!("key id: {}", key.key_id()?);
    println!("{:#}", serde_json::json!(key));
    Ok(())
}
