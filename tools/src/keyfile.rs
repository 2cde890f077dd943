//! Reading keys given on the command line. Two syntaxes, used by every command:
//!
//! - KEYSOURCE (a signing key): a PKCS#8 PEM file, plaintext or encrypted (passphrase from
//!   `--passphrase-file`, or asked for on the terminal), or a `pkcs11:` URI (RFC 7512) naming a
//!   key on a token (its PIN in the URI, or in `--passphrase-file`).
//! - PUB (a public key): SPKI PEM, TUF key JSON (what `ferry key pub` prints), an X.509
//!   certificate, a private key file's public half, or a `pkcs11:` URI.

use crate::error::{io_at, Error, Result};
use ferry_keys::{KeySource, Pkcs11KeySource, Pkcs11Uri, PrivateKey, PublicKey, Signer};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
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
            "{}: not a text file (expected a PKCS#8 private key, an SPKI public key, a \
             certificate or TUF key JSON)",
            path.display()
        ))
    })
}

fn first_pem_label(text: &str) -> Option<&str> {
    let rest = &text[text.find("-----BEGIN ")? + "-----BEGIN ".len()..];
    Some(&rest[..rest.find("-----")?])
}

/// A private key file, decrypted with the passphrase in `passphrase_file` if encrypted. With
/// no passphrase file, an encrypted key's passphrase is asked for (without echo) when standard
/// input is a terminal.
pub fn private_key(path: &Path, passphrase_file: Option<&Path>) -> Result<PrivateKey> {
    let text = read_text(path)?;
    let passphrase = passphrase_file.map(read_passphrase).transpose()?;
    match PrivateKey::from_pkcs8_pem(&text, passphrase.as_ref().map(|p| p.as_slice())) {
        Ok(key) => Ok(key),
        Err(ferry_keys::Error::PassphraseRequired) if std::io::stdin().is_terminal() => {
            let typed = prompt_passphrase(path)?;
            Ok(PrivateKey::from_pkcs8_pem(&text, Some(typed.as_slice()))?)
        }
        Err(ferry_keys::Error::PassphraseRequired) => Err(Error::Usage(format!(
            "{} is encrypted: give --passphrase-file FILE (or run on a terminal to be asked \
             for the passphrase)",
            path.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Ask for `path`'s passphrase on the terminal, without echo.
fn prompt_passphrase(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let typed = rpassword::prompt_password(format!("passphrase for {}: ", path.display()))
        .map(Zeroizing::new)
        .map_err(io_at("/dev/tty"))?;
    if typed.is_empty() {
        return Err(Error::Usage(format!(
            "no passphrase typed for {} (expected its non-empty passphrase)",
            path.display()
        )));
    }
    Ok(Zeroizing::new(typed.as_bytes().to_vec()))
}

/// The public key in `path`: SPKI PEM, a certificate's key, a private key's public half, or
/// TUF key JSON.
pub fn public_key(path: &Path, passphrase_file: Option<&Path>) -> Result<PublicKey> {
    let text = read_text(path)?;
    // JSON first: an rsa or ecdsa TUF key holds a PEM block inside its keyval string.
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.starts_with('{') || start.starts_with("key id: ") {
        return PublicKey::from_tuf_json(text.as_bytes())
            .map_err(|e| Error::Usage(format!("{}: read as TUF key JSON: {e}", path.display())));
    }
    match first_pem_label(&text) {
        Some("PUBLIC KEY") => Ok(PublicKey::from_spki_pem(&text)?),
        Some("CERTIFICATE") => Ok(PublicKey::from_certificate_pem(text.as_bytes())?),
        // "RSA PRIVATE KEY" and the like get private_key's advice on converting them.
        Some(label) if label.ends_with("PRIVATE KEY") => {
            Ok(private_key(path, passphrase_file)?.public_key().clone())
        }
        Some(other) => Err(Error::Usage(format!(
            "{}: PEM label '{other}' is not a key (expected PUBLIC KEY, CERTIFICATE, PRIVATE KEY \
             or ENCRYPTED PRIVATE KEY)",
            path.display()
        ))),
        None => Err(Error::Usage(format!(
            "{}: neither a PEM block nor TUF key JSON (expected SPKI PEM, TUF key JSON, a \
             certificate or a PKCS#8 private key)",
            path.display()
        ))),
    }
}

/// The `pkcs11:` URI `spec`, with the PIN in `passphrase_file` when the URI carries none.
fn pkcs11_source(spec: &str, passphrase_file: Option<&Path>) -> Result<Pkcs11KeySource> {
    let pin = passphrase_file.map(read_passphrase).transpose()?;
    Ok(Pkcs11KeySource::parse(spec)?.with_pin(pin.as_ref().map(|p| p.as_slice()))?)
}

/// A signing key named the way every signing command takes one (KEYSOURCE): a private key
/// file (PKCS#8 PEM, encrypted or not) or a `pkcs11:` URI. The one place a KEYSOURCE argument
/// is turned into a signer.
pub fn signer(spec: &str, passphrase_file: Option<&Path>) -> Result<Arc<dyn Signer>> {
    if Pkcs11Uri::is_pkcs11(spec) {
        return Ok(pkcs11_source(spec, passphrase_file)?.signer()?);
    }
    Ok(Arc::new(private_key(Path::new(spec), passphrase_file)?))
}

/// A public key named the way every command takes one (PUB): SPKI PEM, TUF key JSON, an
/// X.509 certificate, a private key file's public half, or a `pkcs11:` URI. The one place a
/// PUB argument is turned into a key.
pub fn public_key_of(spec: &str, passphrase_file: Option<&Path>) -> Result<PublicKey> {
    if Pkcs11Uri::is_pkcs11(spec) {
        return Ok(pkcs11_source(spec, passphrase_file)?.public_key()?);
    }
    public_key(Path::new(spec), passphrase_file)
}
