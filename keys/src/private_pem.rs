//! Private keys as PKCS#8 PEM, plaintext or passphrase-encrypted (PBES2), and key files.
use crate::private::{PrivateKey, Secret};
use crate::spki_key::{OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_RSA};
use crate::{pem, Error, Result};
use pkcs8::der::{Decode, Reader, SliceReader};
use pkcs8::pkcs5::{self, pbes2, EncryptionScheme};
use pkcs8::spki::AlgorithmIdentifierRef;
use pkcs8::{
    DecodePrivateKey, EncodePrivateKey, EncryptedPrivateKeyInfo, LineEnding, PrivateKeyInfo,
    SecretDocument,
};
use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::Zeroizing;

const LABEL_PLAIN: &str = "PRIVATE KEY";
const LABEL_ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";

/// Decrypting runs the file's own KDF parameters; a corrupt or hostile file could ask for
/// terabytes of scrypt memory (the process aborts) or billions of PBKDF2 rounds (it hangs).
/// These caps are far above what any tool writes (OpenSSL refuses scrypt over 32 MiB, PBKDF2
/// writers use at most a few million rounds).
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// N·r·p, the scrypt work factor; ours is 2^14·8·5, about 2^19.3.
const MAX_SCRYPT_WORK: u64 = 1 << 26;
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

impl PrivateKey {
    /// Load a PKCS#8 PEM private key: `PRIVATE KEY` (plaintext) or `ENCRYPTED PRIVATE KEY`
    /// (PBES2 with scrypt or PBKDF2-HMAC-SHA-2, and AES-CBC). The algorithm comes from the
    /// PKCS#8 algorithm identifier: Ed25519, rsaEncryption, or id-ecPublicKey with P-256.
    /// A passphrase given for a plaintext key is ignored.
    pub fn from_pkcs8_pem(pem: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey> {
        let (label, block) = pem::first_block(pem).map_err(Error::MalformedPrivateKey)?;
        match label {
            LABEL_PLAIN => {
                let (_, doc) = SecretDocument::from_pem(block).map_err(|e| {
                    Error::MalformedPrivateKey(format!("PEM '{LABEL_PLAIN}' does not decode: {e}"))
                })?;
                Self::from_pkcs8_der(doc.as_bytes())
            }
            LABEL_ENCRYPTED => {
                let passphrase = passphrase.ok_or(Error::PassphraseRequired)?;
                let (_, doc) = SecretDocument::from_pem(block).map_err(|e| {
                    Error::MalformedPrivateKey(format!(
                        "PEM '{LABEL_ENCRYPTED}' does not decode: {e}"
                    ))
                })?;
                let plain = decrypt(doc.as_bytes(), passphrase)?;
                Self::from_pkcs8_der(plain.as_bytes())
            }
            other => Err(Error::Unsupported(format!(
                "PEM label is '{other}', expected '{LABEL_PLAIN}' or '{LABEL_ENCRYPTED}' (PKCS#8); \
                 convert with `openssl pkcs8 -topk8 -in OLD -out NEW`"
            ))),
        }
    }

    /// Load a plaintext DER PKCS#8 `PrivateKeyInfo`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey> {
        let info = PrivateKeyInfo::from_der(der).map_err(|e| {
            Error::MalformedPrivateKey(format!("not a DER PKCS#8 PrivateKeyInfo: {e}"))
        })?;
        let oid = info.algorithm.oid;
        let malformed = |what: &str, e: pkcs8::Error| {
            Error::MalformedPrivateKey(format!("{what} private key does not decode: {e}"))
        };
        let secret = if oid == OID_ED25519 {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map_err(|e| malformed("Ed25519", e))?;
            Secret::Ed25519(key)
        } else if oid == OID_RSA {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| malformed("RSA", e))?;
            Secret::Rsa(Box::new(key))
        } else if oid == OID_EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().ok();
            if curve != Some(OID_P256) {
                return Err(Error::Unsupported(format!(
                    "EC private key curve is {} (expected prime256v1 / P-256, {OID_P256})",
                    curve.map_or_else(|| "not named".to_owned(), |c| c.to_string())
                )));
            }
            let key = p256::SecretKey::from_pkcs8_der(der).map_err(|e| malformed("P-256", e))?;
            Secret::EcdsaP256(key.into())
        } else {
            return Err(Error::Unsupported(format!(
                "private key algorithm {oid} (expected Ed25519 {OID_ED25519}, rsaEncryption \
                 {OID_RSA} or id-ecPublicKey {OID_EC_PUBLIC_KEY} with P-256)"
            )));
        };
        Self::from_secret(secret)
    }

    fn to_pkcs8_der(&self) -> Result<SecretDocument> {
        let doc = match &self.secret {
            // PKCS#8 v1 (no embedded public key): the form OpenSSL and python `cryptography`
            // write for Ed25519, so every reader accepts it.
            Secret::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            Secret::Rsa(k) => k.to_pkcs8_der(),
            Secret::EcdsaP256(k) => k.to_pkcs8_der(),
        };
        doc.map_err(|e| Error::KeyEncoding(format!("writing PKCS#8: {e}")))
    }

    /// This key as PKCS#8 PEM: `ENCRYPTED PRIVATE KEY` when a passphrase is given (PBES2,
    /// scrypt N=2^14 r=8 p=5 with AES-256-CBC, readable by OpenSSL and python `cryptography`),
    /// else `PRIVATE KEY`. An empty passphrase is refused.
    pub fn to_pkcs8_pem(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>> {
        let der = self.to_pkcs8_der()?;
        let encode_err = |e: pkcs8::der::Error| Error::KeyEncoding(format!("writing PEM: {e}"));
        match passphrase {
            None => der.to_pem(LABEL_PLAIN, LineEnding::LF).map_err(encode_err),
            Some([]) => Err(Error::EmptyPassphrase),
            Some(passphrase) => {
                let info = PrivateKeyInfo::from_der(der.as_bytes())
                    .map_err(|e| Error::KeyEncoding(format!("re-reading PKCS#8: {e}")))?;
                let encrypted = encrypt(&info, passphrase)?;
                encrypted
                    .to_pem(LABEL_ENCRYPTED, LineEnding::LF)
                    .map_err(encode_err)
            }
        }
    }

    /// Write this key to a new file with mode 0600, encrypted if a passphrase is given.
    /// An existing file is never overwritten.
    pub fn write_file(&self, path: impl AsRef<Path>, passphrase: Option<&[u8]>) -> Result<()> {
        let path = path.as_ref();
        // Encrypt first: a failure must not leave an empty key file behind.
        let pem = self.to_pkcs8_pem(passphrase)?;
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        // The mode is set by open(2) itself, so the file is never readable by others, not even
        // between creation and a later chmod.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::KeyFileExists {
                    path: path.to_owned(),
                },
                _ => io_err(e),
            })?;
        let written = file
            .write_all(pem.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            drop(file);
            // We created it a moment ago; a truncated key file is worse than none.
            let _ = std::fs::remove_file(path);
            return Err(io_err(e));
        }
        Ok(())
    }

    /// [`PrivateKey::read_file`] for a key that signs on a server or an ECU: refused unless
    /// only its owner can read the file (the mode [`PrivateKey::write_file`] gives it).
    pub fn read_file_owner_only(
        path: impl AsRef<Path>,
        passphrase: Option<&[u8]>,
    ) -> Result<PrivateKey> {
        check_owner_only(path.as_ref())?;
        Self::read_file(path, passphrase)
    }

    /// Read a PKCS#8 PEM key file (see [`PrivateKey::from_pkcs8_pem`]).
    pub fn read_file(path: impl AsRef<Path>, passphrase: Option<&[u8]>) -> Result<PrivateKey> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::MalformedPrivateKey(format!(
                "{}: not a PEM text file (expected '-----BEGIN PRIVATE KEY-----')",
                path.display()
            ))
        })?;
        Self::from_pkcs8_pem(text, passphrase)
    }
}

/// PBES2: scrypt N=2^14, r=8, p=5 (OWASP's 16 MiB setting, as strong as N=2^17 p=1) and
/// AES-256-CBC. pkcs8's own default (N=2^15) needs just over OpenSSL's 32 MiB scrypt limit, so
/// OpenSSL and python `cryptography` could not read the key.
fn encrypt(info: &PrivateKeyInfo<'_>, passphrase: &[u8]) -> Result<SecretDocument> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let err = |e: String| Error::KeyEncoding(format!("encrypting PKCS#8: {e}"));
    let scrypt = pkcs5::scrypt::Params::new(14, 8, 5, 32).map_err(|e| err(e.to_string()))?;
    let params =
        pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv).map_err(|e| err(e.to_string()))?;
    info.encrypt_with_params(params, passphrase)
        .map_err(|e| err(e.to_string()))
}

fn decrypt(der: &[u8], passphrase: &[u8]) -> Result<SecretDocument> {
    let info = EncryptedPrivateKeyInfo::from_der(der).map_err(|e| match encryption_oid(der) {
        Some(oid) => Error::Unsupported(format!(
            "private key encryption algorithm {oid} (expected PBES2 with scrypt or \
             PBKDF2-HMAC-SHA-2, and AES-CBC; re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)"
        )),
        None => Error::MalformedPrivateKey(format!("not a PKCS#8 EncryptedPrivateKeyInfo: {e}")),
    })?;
    check_kdf_cost(&info.encryption_algorithm)?;
    let plain = info.decrypt(passphrase).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { oid }) => {
            Error::Unsupported(format!(
                "private key encryption algorithm {oid} (expected PBES2 with scrypt or \
                 PBKDF2-HMAC-SHA-2, and AES-CBC)"
            ))
        }
        pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::NoPbes1CryptSupport) => Error::Unsupported(
            "private key is encrypted with PBES1 (expected PBES2; re-encrypt with \
                 `openssl pkcs8 -topk8 -v2 aes-256-cbc`)"
                .to_owned(),
        ),
        pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid { oid }) => {
            Error::MalformedPrivateKey(format!("encryption parameters for {oid} are invalid"))
        }
        // Bad padding or garbage plaintext: a wrong passphrase looks exactly like this.
        _ => Error::WrongPassphrase,
    })?;
    // With a wrong passphrase the padding still checks out about once in 256 tries; the
    // plaintext is then garbage, which must be reported as the passphrase, not the key.
    PrivateKeyInfo::from_der(plain.as_bytes()).map_err(|_| Error::WrongPassphrase)?;
    Ok(plain)
}

/// The algorithm OID of an EncryptedPrivateKeyInfo whose parameters pkcs5 cannot parse
/// (PKCS#12 PBEs and the like), to name it in the error.
fn encryption_oid(der: &[u8]) -> Option<pkcs8::ObjectIdentifier> {
    let mut reader = SliceReader::new(der).ok()?;
    reader
        .sequence(|r| {
            let algorithm = AlgorithmIdentifierRef::decode(r)?;
            r.read_slice(r.remaining_len())?;
            Ok(algorithm.oid)
        })
        .ok()
}

fn check_kdf_cost(scheme: &EncryptionScheme<'_>) -> Result<()> {
    let EncryptionScheme::Pbes2(params) = scheme else {
        return Ok(());
    };
    let too_costly = match &params.kdf {
        pbes2::Kdf::Scrypt(p) => {
            let block = 128 * u64::from(p.block_size);
            let memory = block
                .saturating_mul(p.cost_parameter)
                .saturating_add(block.saturating_mul(u64::from(p.parallelization)));
            let work = p
                .cost_parameter
                .saturating_mul(u64::from(p.block_size))
                .saturating_mul(u64::from(p.parallelization));
            if memory > MAX_SCRYPT_MEMORY {
                Some(format!(
                    "scrypt needs {memory} bytes (at most {MAX_SCRYPT_MEMORY} accepted)"
                ))
            } else if work > MAX_SCRYPT_WORK {
                Some(format!(
                    "scrypt work N*r*p is {work} (at most {MAX_SCRYPT_WORK} accepted)"
                ))
            } else {
                None
            }
        }
        pbes2::Kdf::Pbkdf2(p) => (p.iteration_count > MAX_PBKDF2_ROUNDS).then(|| {
            format!(
                "PBKDF2 asks for {} rounds (at most {MAX_PBKDF2_ROUNDS} accepted)",
                p.iteration_count
            )
        }),
        // Any other KDF is refused by pkcs5 when decrypting.
        _ => None,
    };
    match too_costly {
        Some(reason) => Err(Error::MalformedPrivateKey(format!(
            "key derivation cost check failed: {reason}"
        ))),
        None => Ok(()),
    }
}

/// Refuse a key file that group or others may read or write.
#[cfg(unix)]
pub fn check_owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyFileMode {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// Refuse a key file that group or others may read or write (no modes to check here).
#[cfg(not(unix))]
pub fn check_owner_only(_path: &Path) -> Result<()> {
    Ok(())
}
