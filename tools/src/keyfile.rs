//! Reading key files given on the command line: private keys (plaintext or encrypted PKCS#8),
//! SPKI public keys and X.509 certificates, told apart by their PEM label.

use crate::error::{io_at, Error, Result};
use ferry_keys::{PrivateKey, PublicKey};
use std::path::Path;
use zeroize::Zeroizing;

/// The passphrase in `path`, minus one trailing newline (`\n` or `\r\n`), as editors and
/// `echo` add one. Never echoed anywhere, not even in errors.
pub fn read_passphrase(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let mut pass = Zeroizing::new(std::fs::read(path).map_err(io_at(path))?);
    if pass.last() == Some(&b'\n') {
        pass.pop();
        if pass.last() == Some(&b'\r') {
            pass.pop();
        }
    }
    if pass.is_empty() {
        return Err(Error::Usage(format!(
            "passphrase file {} is empty (expected a non-empty passphrase)",
            path.display()
        )));
    }
    Ok(pass)
}

fn read_text(path: &Path) -> Result<Zeroizing<String>> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    String::from_utf8(bytes).map(Zeroizing::new).map_err(|_| {
        Error::Usage(format!(
            "{}: not a PEM text file (expected a PKCS#8 private key, an SPKI public key or a certificate)",
            path.display()
        ))
    })
}

/// The label of the first PEM block in `path` ("PRIVATE KEY", "PUBLIC KEY", "CERTIFICATE", ...).
pub fn pem_label(path: &Path) -> Result<Option<String>> {
    let text = read_text(path)?;
    Ok(first_pem_label(&text).map(str::to_owned))
}

fn first_pem_label(text: &str) -> Option<&str> {
    let rest = &text[text.find("-----BEGIN ")? + "-----BEGIN ".len()..];
    Some(&rest[..rest.find("-----")?])
}

/// A private key file, decrypted with the passphrase in `passphrase_file` if encrypted.
pub fn private_key(path: &Path, passphrase_file: Option<&Path>) -> Result<PrivateKey> {
    let text = read_text(path)?;
    let passphrase = passphrase_file.map(read_passphrase).transpose()?;
    match PrivateKey::from_pkcs8_pem(&text, passphrase.as_ref().map(|p| p.as_slice())) {
        Ok(key) => Ok(key),
        Err(ferry_keys::Error::PassphraseRequired) => Err(Error::Usage(format!(
            "{} is encrypted: give --passphrase-file FILE",
            path.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The public key in `path`: an SPKI public key, a certificate's key, or a private key's
/// public half.
pub fn public_key(path: &Path, passphrase_file: Option<&Path>) -> Result<PublicKey> {
    let text = read_text(path)?;
    match first_pem_label(&text) {
        Some("PUBLIC KEY") => Ok(PublicKey::from_spki_pem(&text)?),
        Some("CERTIFICATE") => Ok(PublicKey::from_certificate_pem(text.as_bytes())?),
        _ => Ok(private_key(path, passphrase_file)?.public_key().clone()),
    }
}

/// A signing key named the way every signing command takes one: a private key file (PKCS#8
/// PEM, encrypted or not). The one place a KEYSOURCE argument is turned into a signer.
pub fn signer(
    spec: &str,
    passphrase_file: Option<&Path>,
) -> Result<std::sync::Arc<dyn ferry_keys::Signer>> {
    Ok(std::sync::Arc::new(private_key(
        Path::new(spec),
        passphrase_file,
    )?))
}

/// A public key named the way every command takes one: SPKI PEM, an X.509 certificate, or a
/// private key file's public half. The one place a PUB argument is turned into a key.
pub fn public_key_of(spec: &str, passphrase_file: Option<&Path>) -> Result<PublicKey> {
    public_key(Path::new(spec), passphrase_file)
}
