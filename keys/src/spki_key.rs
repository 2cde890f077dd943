//! Public keys as SubjectPublicKeyInfo (SPKI): the one place that decides which algorithms,
//! curves and RSA sizes Ferry accepts, used by verification, SPKI PEM import and certificates.
use crate::{pem, Error, PublicKey, Result, Scheme};
use pkcs8::der::Decode;
use pkcs8::spki::{EncodePublicKey, ObjectIdentifier, SubjectPublicKeyInfoRef};
use pkcs8::{Document, LineEnding};

pub(crate) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
pub(crate) const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Below 2048 bits RSA is breakable in practice (NIST SP 800-131A); above 8192 nobody signs
/// TUF metadata, and verification cost grows with the modulus, so hostile keys are capped.
pub(crate) const RSA_MIN_BITS: usize = 2048;
pub(crate) const RSA_MAX_BITS: usize = 8192;

/// A verifying key of one of the supported schemes.
#[derive(Debug, Clone)]
pub(crate) enum ParsedPublic {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl ParsedPublic {
    pub(crate) fn scheme(&self) -> Scheme {
        match self {
            ParsedPublic::Ed25519(_) => Scheme::Ed25519,
            ParsedPublic::Rsa(_) => Scheme::RsassaPssSha256,
            ParsedPublic::P256(_) => Scheme::EcdsaSha2Nistp256,
        }
    }

    /// `keyval.public` as Ferry writes it: lowercase hex for ed25519; for rsa and ecdsa the SPKI
    /// PEM with LF endings and a final newline, byte-identical to what python `cryptography`
    /// writes, so key ids agree with securesystemslib's for the same key.
    pub(crate) fn tuf_public(&self) -> Result<String> {
        match self {
            ParsedPublic::Ed25519(k) => Ok(hex::encode(k.as_bytes())),
            ParsedPublic::Rsa(k) => spki_pem(k.to_public_key_pem(LineEnding::LF)),
            ParsedPublic::P256(k) => spki_pem(k.to_public_key_pem(LineEnding::LF)),
        }
    }

    pub(crate) fn to_public_key(&self) -> Result<PublicKey> {
        Ok(PublicKey::new(self.scheme(), self.tuf_public()?))
    }

    fn spki_pem_string(&self) -> Result<String> {
        match self {
            ParsedPublic::Ed25519(k) => spki_pem(k.to_public_key_pem(LineEnding::LF)),
            ParsedPublic::Rsa(_) | ParsedPublic::P256(_) => self.tuf_public(),
        }
    }
}

fn spki_pem(r: std::result::Result<String, pkcs8::spki::Error>) -> Result<String> {
    r.map_err(|e| Error::KeyEncoding(format!("writing SPKI PEM: {e}")))
}

/// Parse a DER SubjectPublicKeyInfo. The error is a bare reason; callers add context.
pub(crate) fn parse_spki_der(der: &[u8]) -> std::result::Result<ParsedPublic, String> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| format!("not a DER SubjectPublicKeyInfo: {e}"))?;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or("subjectPublicKey BIT STRING has unused bits")?;
    let oid = spki.algorithm.oid;
    if oid == OID_ED25519 {
        if spki.algorithm.parameters.is_some() {
            return Err(
                "Ed25519 algorithm identifier has parameters (RFC 8410: expected none)".into(),
            );
        }
        ed25519_from_bytes(key_bytes).map(ParsedPublic::Ed25519)
    } else if oid == OID_RSA {
        rsa_from_pkcs1(key_bytes).map(ParsedPublic::Rsa)
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|_| "EC key has no named curve (expected prime256v1 / P-256)".to_owned())?;
        if curve != OID_P256 {
            return Err(format!(
                "EC key is on curve {} (expected prime256v1 / P-256, {OID_P256})",
                curve_name(curve)
            ));
        }
        p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
            .map(ParsedPublic::P256)
            .map_err(|_| "EC point is not a valid P-256 public key".to_owned())
    } else {
        Err(format!(
            "public key algorithm {oid} is not supported (expected Ed25519 {OID_ED25519}, \
             rsaEncryption {OID_RSA} or id-ecPublicKey {OID_EC_PUBLIC_KEY} with P-256)"
        ))
    }
}

fn curve_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.34" => "secp384r1 (P-384)".into(),
        "1.3.132.0.35" => "secp521r1 (P-521)".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        other => other.into(),
    }
}

pub(crate) fn ed25519_from_bytes(
    bytes: &[u8],
) -> std::result::Result<ed25519_dalek::VerifyingKey, String> {
    let arr: &[u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("ed25519 public key is {} bytes (expected 32)", bytes.len()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(arr)
        .map_err(|_| "ed25519 public key is not a valid curve point".to_owned())?;
    // A small-order key would "verify" forged signatures under lax rules; verify_strict refuses
    // them anyway, but saying so at parse time gives a clearer error.
    if key.is_weak() {
        return Err("ed25519 public key is a small-order (weak) point".into());
    }
    Ok(key)
}

/// `keyval.public` of an ed25519 key: exactly 64 lowercase hex characters.
pub(crate) fn ed25519_from_hex(
    s: &str,
) -> std::result::Result<ed25519_dalek::VerifyingKey, String> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "ed25519 keyval.public is not 64 lowercase hex characters ({} characters given)",
            s.chars().count()
        ));
    }
    let bytes = hex::decode(s).map_err(|e| format!("ed25519 keyval.public: {e}"))?;
    ed25519_from_bytes(&bytes)
}

fn rsa_from_pkcs1(bytes: &[u8]) -> std::result::Result<rsa::RsaPublicKey, String> {
    let pkcs1 = rsa::pkcs1::RsaPublicKey::from_der(bytes)
        .map_err(|e| format!("RSA public key is not a DER RSAPublicKey: {e}"))?;
    rsa_from_parts(pkcs1.modulus.as_bytes(), pkcs1.public_exponent.as_bytes())
}

/// An RSA public key from its big-endian modulus and exponent, within the accepted sizes.
pub(crate) fn rsa_from_parts(
    modulus: &[u8],
    exponent: &[u8],
) -> std::result::Result<rsa::RsaPublicKey, String> {
    let n = rsa::BigUint::from_bytes_be(modulus);
    let e = rsa::BigUint::from_bytes_be(exponent);
    let bits = n.bits();
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(format!(
            "RSA key size check failed: modulus has {bits} bits (expected {RSA_MIN_BITS} to {RSA_MAX_BITS})"
        ));
    }
    rsa::RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS)
        .map_err(|e| format!("RSA public key is invalid: {e}"))
}

/// Decode the first PEM block of `text`, which must be a `PUBLIC KEY` (SPKI) block.
pub(crate) fn spki_pem_to_der(text: &str) -> std::result::Result<Document, String> {
    let (label, block) = pem::first_block(text)?;
    if label != "PUBLIC KEY" {
        let hint = match label {
            "RSA PUBLIC KEY" => " (PKCS#1; convert with `openssl rsa -RSAPublicKey_in -pubout`)",
            _ => "",
        };
        return Err(format!(
            "PEM label is '{label}'{hint}, expected 'PUBLIC KEY' (SubjectPublicKeyInfo)"
        ));
    }
    let (_, doc) = Document::from_pem(block).map_err(|e| format!("PEM does not decode: {e}"))?;
    Ok(doc)
}

/// Parse the verifying key a TUF key declares, checking that keyval.public matches the scheme.
pub(crate) fn parse_tuf_key(key: &PublicKey, keyid: &str) -> Result<ParsedPublic> {
    let scheme = key.scheme()?;
    let malformed = |reason: String| Error::MalformedPublicKey {
        keyid: keyid.to_owned(),
        reason,
    };
    let parsed = match scheme {
        Scheme::Ed25519 => {
            ParsedPublic::Ed25519(ed25519_from_hex(&key.keyval.public).map_err(malformed)?)
        }
        Scheme::RsassaPssSha256 | Scheme::EcdsaSha2Nistp256 => {
            let doc = spki_pem_to_der(&key.keyval.public)
                .map_err(|r| malformed(format!("keyval.public: {r}")))?;
            parse_spki_der(doc.as_bytes()).map_err(malformed)?
        }
    };
    if parsed.scheme() != scheme {
        return Err(malformed(format!(
            "keyval.public holds a {} key but the key declares scheme {}",
            parsed.scheme().name(),
            scheme.name()
        )));
    }
    Ok(parsed)
}

impl PublicKey {
    /// A TUF public key from an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), with the standard
    /// scheme for its algorithm: ed25519, rsassa-pss-sha256 (RSA, 2048 to 8192 bits) or
    /// ecdsa-sha2-nistp256 (P-256 only).
    pub fn from_spki_pem(pem: &str) -> Result<PublicKey> {
        let doc = spki_pem_to_der(pem).map_err(Error::MalformedSpki)?;
        Self::from_spki_der(doc.as_bytes())
    }

    /// As [`PublicKey::from_spki_pem`], from DER.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        parse_spki_der(der)
            .map_err(Error::MalformedSpki)?
            .to_public_key()
    }

    /// This key as SPKI PEM (LF line endings, final newline).
    pub fn to_spki_pem(&self) -> Result<String> {
        let keyid = self.key_id()?;
        parse_tuf_key(self, keyid.as_str())?.spki_pem_string()
    }
}
