//! `ferry key`: generate signing keys (in files or on PKCS#11 tokens) and show public keys in
//! TUF or SPKI PEM form.
use crate::error::{io_at, Error, Result};
use clap::{Args, Subcommand, ValueEnum};
use ferry_keys::{KeyKind, Pkcs11KeySource, PrivateKey, PublicKey};
use std::path::PathBuf;

/// Key commands.
#[derive(Debug, Subcommand)]
#[command(after_help = KEY_EXAMPLE)]
pub enum Command {
    /// Generate a signing key: a PKCS#8 PEM file (mode 0600), or a key pair on a PKCS#11 token.
    #[command(after_help = GEN_EXAMPLE)]
    Gen(GenArgs),
    /// Print the public key of any key (file or pkcs11: URI) as TUF key JSON or SPKI PEM.
    #[command(after_help = PUB_EXAMPLE)]
    Pub(PubArgs),
    /// Print the TUF public key JSON and key id of an X.509 certificate's key.
    #[command(after_help = FROM_CERT_EXAMPLE)]
    FromCert(FromCertArgs),
}

const KEY_EXAMPLE: &str = "\
Example:
  ferry key gen --type ed25519 --out root.key --passphrase-file root.pass
  ferry key pub root.key --passphrase-file root.pass > root.pub.json";

const GEN_EXAMPLE: &str = "\
Example:
  # An offline root key, encrypted with the passphrase in root.pass:
  ferry key gen --type ed25519 --out root.key --passphrase-file root.pass
  # An online timestamp key for a server that has no one to type a passphrase:
  ferry key gen --type ecdsa-p256 --out timestamp.key --insecure-plaintext --json
  # A key pair generated on a PKCS#11 token (here SoftHSM2); the private key never leaves it:
  ferry key gen --type ed25519 --pkcs11 \\
    'pkcs11:token=ferry;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin.txt'";

const PUB_EXAMPLE: &str = "\
Example:
  # TUF key JSON on stdout (the key id on stderr), readable by `ferry repo delegate --key`:
  ferry key pub supplier.key --passphrase-file supplier.pass > supplier.pub.json
  ferry key pub 'pkcs11:token=ferry;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so' --format pem
  ferry key pub timestamp.pub.pem --json";

const FROM_CERT_EXAMPLE: &str = "\
Example:
  ferry key from-cert primary-ecu.crt.pem --json
  ferry key from-cert primary-ecu.crt.pem > primary-ecu.pub.json   # key id on stderr";

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
    /// File to create; an existing file is never overwritten. This or --pkcs11 is required.
    #[arg(long, value_name = "FILE", required_unless_present = "pkcs11")]
    out: Option<PathBuf>,
    /// Generate the key pair on a PKCS#11 token instead of in a file: an RFC 7512 URI with
    /// the module (module-path=), the token, the new key's label (object=) and the user PIN
    /// (pin-source=file:PATH or pin-value=). The private key is sensitive and not extractable.
    #[arg(
        long,
        value_name = "URI",
        conflicts_with_all = ["out", "passphrase_file", "insecure_plaintext"]
    )]
    pkcs11: Option<String>,
    /// Encrypt the key with the passphrase in this file (one trailing newline is ignored).
    /// This or --insecure-plaintext is required for a key file.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Write the key unencrypted, protected only by its file mode.
    #[arg(long)]
    insecure_plaintext: bool,
    /// Print {"keyid", "public", "path"} (or "uri" with --pkcs11) as one JSON object.
    #[arg(long)]
    json: bool,
}

/// How `ferry key pub` writes the key.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PubFormat {
    /// TUF key JSON, as root and targets metadata hold it.
    Tuf,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    Pem,
}

#[derive(Debug, Args)]
pub struct PubArgs {
    /// Any key: a private key (PKCS#8 PEM, plaintext or encrypted), a public key (SPKI PEM or
    /// TUF key JSON), an X.509 certificate, or a pkcs11: URI.
    #[arg(value_name = "KEY")]
    key: String,
    /// Passphrase file for an encrypted private key, or the user PIN file for a pkcs11: URI
    /// without one (one trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Output format; the key id always goes to stderr.
    #[arg(long, value_enum, default_value_t = PubFormat::Tuf)]
    format: PubFormat,
    /// Print {"keyid", "public"} as one JSON object on stdout.
    #[arg(long, conflicts_with = "format")]
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
    if let Some(uri) = &args.pkcs11 {
        return gen_on_token(uri, args.kind.into(), args.json);
    }
    let Some(out) = args.out else {
        return Err(Error::Usage(
            "give --out FILE for a key file, or --pkcs11 URI for a key on a token".into(),
        ));
    };
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
    if out.exists() {
        return Err(ferry_keys::Error::KeyFileExists { path: out }.into());
    }
    let key = PrivateKey::generate(args.kind.into())?;
    key.write_file(&out, passphrase.as_ref().map(|p| p.as_slice()))?;
    tracing::info!(keyid = %key.key_id(), path = %out.display(), "wrote new key");
    if args.json {
        let out = serde_json::json!({
            "keyid": key.key_id(),
            "public": key.public_key(),
            "path": out.display().to_string(),
        });
        println!("{out}");
    } else {
        println!("wrote {} key to {}", key.kind(), out.display());
        print_key(key.public_key())?;
    }
    Ok(())
}

fn gen_on_token(uri: &str, kind: KeyKind, json: bool) -> Result<()> {
    let source = Pkcs11KeySource::parse(uri)?;
    let signer = source.generate(kind)?;
    let shown = source.uri().redacted();
    let key = ferry_keys::Signer::public_key(&signer);
    let keyid = ferry_keys::Signer::key_id(&signer);
    tracing::info!(%keyid, uri = %shown, "generated key on token");
    if json {
        let out = serde_json::json!({ "keyid": keyid, "public": key, "uri": shown });
        println!("{out}");
    } else {
        println!("generated {kind} key on {shown}");
        print_key(key)?;
    }
    Ok(())
}

fn public(args: PubArgs) -> Result<()> {
    let key = crate::keyfile::public_key_of(&args.key, args.passphrase_file.as_deref())?;
    if args.json {
        let out = serde_json::json!({ "keyid": key.key_id()?, "public": key });
        println!("{out}");
        return Ok(());
    }
    output(&key, args.format)
}

fn from_cert(args: FromCertArgs) -> Result<()> {
    let pem = std::fs::read(&args.cert).map_err(io_at(&args.cert))?;
    let key = PublicKey::from_certificate_pem(&pem)?;
    if args.json {
        let out = serde_json::json!({ "keyid": key.key_id()?, "public": key });
        println!("{out}");
        return Ok(());
    }
    output(&key, PubFormat::Tuf)
}

/// The key alone on stdout, so it can be redirected to a file and read back by any command
/// that takes a public key; the key id on stderr for the person running it.
fn output(key: &PublicKey, format: PubFormat) -> Result<()> {
    let keyid = key.key_id()?;
    match format {
        PubFormat::Tuf => println!("{:#}", serde_json::json!(key)),
        PubFormat::Pem => print!("{}", key.to_spki_pem()?),
    }
    eprintln!("key id: {keyid}");
    Ok(())
}

/// `key id: ...` and the TUF key JSON, for a person reading `ferry key gen`'s output.
fn print_key(key: &PublicKey) -> Result<()> {
    println!("key id: {}", key.key_id()?);
    println!("{:#}", serde_json::json!(key));
    Ok(())
}
