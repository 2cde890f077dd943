use crate::cjson::CjsonError;

/// Everything that can go wrong with keys, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- bad input: hostile or corrupt keys and signatures ---
    #[error("signature check failed: {scheme} signature by key {keyid} does not verify")]
    BadSignature { keyid: String, scheme: String },
    #[error("signature check failed: signature for key {keyid} is malformed: {reason}")]
    MalformedSignature { keyid: String, reason: String },
    #[error("key check failed: unsupported key type/scheme {keytype}/{scheme} (expected ed25519/ed25519, rsa/rsassa-pss-sha256 or ecdsa/ecdsa-sha2-nistp256)")]
    UnsupportedScheme { keytype: String, scheme: String },
    #[error("key check failed: public key {keyid} is malformed: {reason}")]
    MalformedPublicKey { keyid: String, reason: String },
    #[error("key check failed: private key is malformed: {0}")]
    MalformedPrivateKey(String),
    #[error("key check failed: TUF key JSON is malformed: {0}")]
    MalformedKeyJson(String),
    #[error("key check failed: certificate is malformed: {0}")]
    MalformedCertificate(String),
    #[error("key check failed: SubjectPublicKeyInfo (SPKI) public key is malformed: {0}")]
    MalformedSpki(String),
    #[error(transparent)]
    Canonical(#[from] CjsonError),

    // --- misconfiguration ---
    #[error("passphrase check failed: private key is encrypted and no passphrase was given")]
    PassphraseRequired,
    #[error("passphrase check failed: wrong passphrase, or the encrypted key is corrupt")]
    WrongPassphrase,
    #[error("passphrase check failed: the passphrase is empty (expected at least one byte)")]
    EmptyPassphrase,
    #[error("key check failed: {0}")]
    Unsupported(String),
    #[error("PKCS#11 URI check failed: {0}")]
    Pkcs11Uri(String),
    #[error("PKCS#11 check failed: {0}")]
    Pkcs11(String),
    #[error("key file check failed: {path} already exists (expected a new path; a key file is never overwritten)")]
    KeyFileExists { path: std::path::PathBuf },

    // --- our side: the crypto libraries refused an operation that should work ---
    #[error("key generation failed for {kind}: {reason}")]
    KeyGeneration { kind: String, reason: String },
    #[error("key encoding failed: {0}")]
    KeyEncoding(String),
    #[error("signing failed with key {keyid}: {reason}")]
    Signing { keyid: String, reason: String },

    // --- misconfiguration ---
    #[error("key file mode check failed: {path} has mode {mode:o}; expected 600 (readable by its owner only)")]
    KeyFileMode { path: std::path::PathBuf, mode: u32 },

    // --- I/O ---
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;
