//! A token's public key object read as a verifying key, so it becomes the same TUF key (and
//! key id) that a key file of the same material gives.
use super::token::{bytes_attr, ck, err};
use crate::spki_key::{ed25519_from_bytes, rsa_from_parts, ParsedPublic};
use crate::Result;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;

/// DER OID 1.3.101.112 (Ed25519), the `CKA_EC_PARAMS` of an Ed25519 key.
pub(crate) const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// PrintableString "edwards25519": the curve name some tokens write instead of the OID.
const ED25519_PARAMS_NAME: &[u8] = b"\x13\x0cedwards25519";
/// DER OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
pub(crate) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// `CKA_KEY_TYPE` of a key object.
pub(crate) fn key_type(session: &Session, object: ObjectHandle) -> Result<KeyType> {
    session
        .get_attributes(object, &[AttributeType::KeyType])
        .map_err(ck("reading a key's CKA_KEY_TYPE"))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::KeyType(t) => Some(t),
            _ => None,
        })
        .ok_or_else(|| err("the key has no CKA_KEY_TYPE attribute"))
}

/// Check that an EC or Edwards key is on the one curve Ferry supports for its type.
pub(crate) fn check_curve(session: &Session, object: ObjectHandle, kind: KeyType) -> Result<()> {
    let params = bytes_attr(session, object, AttributeType::EcParams)?;
    if kind == KeyType::EC_EDWARDS {
        if params != ED25519_PARAMS && params != ED25519_PARAMS_NAME {
            return Err(err(format!(
                "the Edwards key's CKA_EC_PARAMS are {} (expected Ed25519, OID 1.3.101.112)",
                hex::encode(&params)
            )));
        }
    } else if params != P256_PARAMS {
        return Err(err(format!(
            "the EC key's CKA_EC_PARAMS are {} (expected prime256v1 / P-256, OID 1.2.840.10045.3.1.7)",
            hex::encode(&params)
        )));
    }
    Ok(())
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point (PKCS#11 v2.40); some tokens give
/// the bare point. Both are told apart by length, as the point's own length is fixed.
fn unwrap_point(value: &[u8], bare_len: usize) -> &[u8] {
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == bare_len && rest.len() == bare_len => rest,
        _ => value,
    }
}

/// The verifying key of a public key object (or, for RSA, of a private key object, whose
/// modulus and exponent are public attributes).
pub(crate) fn read_public(session: &Session, object: ObjectHandle) -> Result<ParsedPublic> {
    let kind = key_type(session, object)?;
    if kind == KeyType::EC_EDWARDS {
        check_curve(session, object, kind)?;
        let point = bytes_attr(session, object, AttributeType::EcPoint)?;
        let key = ed25519_from_bytes(unwrap_point(&point, 32))
            .map_err(|r| err(format!("the token's Ed25519 public key: {r}")))?;
        Ok(ParsedPublic::Ed25519(key))
    } else if kind == KeyType::EC {
        check_curve(session, object, kind)?;
        let point = bytes_attr(session, object, AttributeType::EcPoint)?;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(unwrap_point(&point, 65))
            .map_err(|_| err("the token's EC point is not a valid P-256 public key"))?;
        Ok(ParsedPublic::P256(key))
    } else if kind == KeyType::RSA {
        let n = bytes_attr(session, object, AttributeType::Modulus)?;
        let e = bytes_attr(session, object, AttributeType::PublicExponent)?;
        let key =
            rsa_from_parts(&n, &e).map_err(|r| err(format!("the token's RSA public key: {r}")))?;
        Ok(ParsedPublic::Rsa(key))
    } else {
        Err(err(format!(
            "the key is of type {kind} (expected CKK_EC_EDWARDS for ed25519, CKK_EC on P-256 \
             for ecdsa-sha2-nistp256, or CKK_RSA for rsassa-pss-sha256)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::unwrap_point;

    #[test]
    fn ec_points_are_taken_wrapped_or_bare() {
        let bare = [7u8; 32];
        let mut wrapped = vec![0x04, 32];
        wrapped.extend_from_slice(&bare);
        assert_eq!(unwrap_point(&wrapped, 32), &bare);
        assert_eq!(unwrap_point(&bare, 32), &bare);
        // An uncompressed P-256 point starts with 0x04 too, but is 65 bytes long bare.
        let mut point = vec![0x04];
        point.extend_from_slice(&[9u8; 64]);
        assert_eq!(unwrap_point(&point, 65), point.as_slice());
    }
}
