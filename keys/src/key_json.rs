//! Reading a public key given as TUF key JSON, in every form `ferry key pub` and
//! `ferry key gen` print, so a key sent as a file can be read back anywhere a key is taken.
use crate::{Error, PublicKey, Result};
use serde_json::Value;

/// Far larger than any key (an RSA-8192 key's JSON is under 2 KiB); a bound on hostile input.
const MAX_LEN: usize = 64 * 1024;
const LINE_PREFIX: &str = "key id: ";

fn malformed(reason: impl Into<String>) -> Error {
    Error::MalformedKeyJson(reason.into())
}

impl PublicKey {
    /// A public key from TUF key JSON, in any of these forms:
    ///
    /// - a TUF key object: `{"keytype": ..., "keyval": {"public": ...}, "scheme": ...}`
    ///   (`ferry key pub`'s default output);
    /// - an object with `"keyid"` and `"public"` (`ferry key pub --json`, `ferry key gen
    ///   --json`; other members are ignored), where `keyid` must be the key's id;
    /// - a `key id: ID` line followed by the key object (what `ferry key pub` printed before).
    ///
    /// The key must be one Ferry verifies with (its `keyval.public` matching its scheme).
    pub fn from_tuf_json(bytes: &[u8]) -> Result<PublicKey> {
        if bytes.len() > MAX_LEN {
            return Err(malformed(format!(
                "{} bytes (at most {MAX_LEN} accepted)",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8 text"))?;
        let text = text.trim_start_matches('\u{feff}').trim_start();
        let (line_id, json) = match text.strip_prefix(LINE_PREFIX) {
            Some(rest) => {
                let (id, json) = rest.split_once('\n').unwrap_or((rest, ""));
                (Some(id.trim()), json)
            }
            None => (None, text),
        };
        let value: Value = serde_json::from_str(json).map_err(|e| {
            malformed(format!(
                "not one JSON value ({e}); expected a TUF key object or {{\"keyid\", \"public\"}}"
            ))
        })?;
        let Value::Object(mut object) = value else {
            return Err(malformed(
                "the JSON is not an object (expected a TUF key object or {\"keyid\", \"public\"})",
            ));
        };
        let (key_value, wrapped_id) = if object.contains_key("keytype") {
            (Value::Object(object), None)
        } else if let Some(public) = object.remove("public") {
            let id = match object.remove("keyid") {
                Some(Value::String(id)) => Some(id),
                Some(_) => return Err(malformed("\"keyid\" is not a string")),
                None => None,
            };
            (public, id)
        } else {
            return Err(malformed(
                "the object has neither \"keytype\" nor \"public\" (expected a TUF key object \
                 or {\"keyid\", \"public\"})",
            ));
        };
        let key: PublicKey = serde_json::from_value(key_value).map_err(|e| {
            malformed(format!(
                "not a TUF key ({e}); expected \"keytype\", \"scheme\" and \"keyval\": {{\"public\"}}"
            ))
        })?;
        let id = key.key_id()?;
        for given in [line_id, wrapped_id.as_deref()].into_iter().flatten() {
            if given != id.as_str() {
                return Err(malformed(format!(
                    "the key id given with the key is {given:?}, but the key's id is {id} \
                     (expected the two to agree)"
                )));
            }
        }
        key.prepare()?;
        Ok(key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{KeyKind, PrivateKey, PublicKey};

    #[test]
    fn reads_every_form_ferry_prints() {
        for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::Rsa2048] {
            let key = PrivateKey::generate(kind).unwrap();
            let public = key.public_key();
            let id = key.key_id();
            let pretty = format!("{:#}\n", serde_json::json!(public));
            let wrapped = serde_json::json!({"keyid": id, "public": public, "path": "k.pem"});
            let line = format!("key id: {id}\n{pretty}");
            for text in [pretty.clone(), wrapped.to_string(), line] {
                let read = PublicKey::from_tuf_json(text.as_bytes()).unwrap();
                assert_eq!(&read, public, "{kind}: {text}");
                assert_eq!(&read.key_id().unwrap(), id);
            }
        }
    }

    #[test]
    fn refuses_with_a_reason() {
        let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let public = serde_json::to_value(key.public_key()).unwrap();
        let other = "0".repeat(64);
        let cases = [
            ("[]".to_owned(), "not an object"),
            ("{}".to_owned(), "neither"),
            ("{\"keytype\":1}".to_owned(), "not a TUF key"),
            (
                serde_json::json!({"keyid": other, "public": public}).to_string(),
                "agree",
            ),
            (format!("key id: {other}\n{public}"), "agree"),
            (
                serde_json::json!({"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"zz"}})
                    .to_string(),
                "64 lowercase hex",
            ),
            (
                serde_json::json!({"keytype":"dsa","scheme":"dsa","keyval":{"public":"x"}})
                    .to_string(),
                "unsupported",
            ),
            ("{\"a\":".to_owned(), "not one JSON value"),
            (format!("{public} trailing"), "not one JSON value"),
        ];
        for (text, expect) in cases {
            let err = PublicKey::from_tuf_json(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{text}: {err}");
        }
        assert!(PublicKey::from_tuf_json(&[0xff, 0xfe]).is_err());
        assert!(PublicKey::from_tuf_json(&vec![b' '; 70_000]).is_err());
    }
}
