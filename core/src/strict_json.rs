//! JSON for signed documents, read strictly: an object that names a key twice is refused.
//!
//! serde_json keeps the last of two equal keys. In a signed document that makes the bytes
//! ambiguous: Ferry would act on one value while another parser (or an auditor reading the
//! stored body) sees the first, and both see a valid signature over the canonical form Ferry
//! computed. So every metadata file, vehicle manifest and ECU report goes through
//! [`value_from_slice`] before anything else reads it.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Parse `bytes` as one JSON value, refusing an object with a key it already has (serde_json's
/// own limits apply: nesting depth, trailing characters). The error names the key.
pub fn value_from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A [`serde_json::Value`] built node by node, each object checked for repeated keys.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    /// serde_json hands over a fraction, an exponent, and an integer beyond 64 bits alike as
    /// an `f64`. Signed documents are canonical JSON, which has integers only, so all three are
    /// refused here, where the message can still say why (canonical JSON would later call an
    /// integer of 2^64 a floating-point number).
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format_args!(
            "number check failed: found {v:e}, a fraction or an integer outside the 64-bit range; expected an integer from -2^63 to 2^64-1 (signed documents are canonical JSON: integers only)"
        )))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key check failed: an object names {key:?} twice; expected every key of an object once"
                )));
            }
            let value = map.next_value_seed(Strict)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_as_serde_json_without_repeats() {
        let text = br#"{"a":[1,-2,"x",null,true,{"b":{}}],"c":"\u00e9","d":18446744073709551615,"e":-9223372036854775808}"#;
        let ours = value_from_slice(text).expect("valid JSON");
        let theirs: Value = serde_json::from_slice(text).expect("valid JSON");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"signed":{"x":{"k":1,"k":1}}}"#,
            r#"[{"z":0},{"y":1,"y":1}]"#,
        ] {
            let err = value_from_slice(text.as_bytes()).expect_err(text);
            assert!(
                err.to_string().contains("duplicate key check failed"),
                "{err}"
            );
        }
        // Equal after unescaping is equal.
        let err = value_from_slice(br#"{"a":1,"\u0061":2}"#).expect_err("escaped repeat");
        assert!(err.to_string().contains(r#"names "a" twice"#), "{err}");
    }

    #[test]
    fn numbers_beyond_64_bits_and_fractions_are_named() {
        for text in ["18446744073709551616", "-9223372036854775809", "1.5", "1e3"] {
            let err = value_from_slice(text.as_bytes()).expect_err(text);
            assert!(
                err.to_string().contains("number check failed"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(value_from_slice(b"{} {}").is_err());
        assert!(value_from_slice(b"{} \n").is_ok());
    }
}
