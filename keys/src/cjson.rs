//! Canonical JSON as securesystemslib writes it (the OLPC dialect TUF signs over):
//! object keys sorted by code point, no insignificant whitespace, only `"` and `\` escaped,
//! integers only.
//!
//! This is a direct `serde::Serializer`, so a typed document is written in one pass with no
//! intermediate `Value`. Keys that already arrive in order (a `BTreeMap`, a struct whose fields
//! are declared alphabetically) cost one comparison each; an object whose keys arrive out of
//! order is re-ordered in place when it closes. Byte-identity with olpc-cjson and
//! securesystemslib is asserted by the tests in this file and in `tests/cjson_identity.rs`.

use serde::ser::{self, Serialize};
use std::fmt;

/// Why a value has no canonical JSON form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CjsonError {
    #[error("canonical JSON check failed: floating-point numbers are not allowed (got {0})")]
    Float(String),
    #[error("canonical JSON check failed: object keys must be strings")]
    NonStringKey,
    #[error("canonical JSON check failed: duplicate object key {0:?}")]
    DuplicateKey(String),
    #[error("canonical JSON serialization failed: {0}")]
    Custom(String),
}

impl ser::Error for CjsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CjsonError::Custom(msg.to_string())
    }
}

/// Serialize `value` to canonical JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CjsonError> {
    let mut out = Vec::with_capacity(256);
    write_into(value, &mut out)?;
    Ok(out)
}

/// Append the canonical JSON of `value` to `out`.
pub fn write_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CjsonError> {
    let mut ser = Serializer {
        out: std::mem::take(out),
        frames: Vec::new(),
        depth: 0,
    };
    let result = value.serialize(&mut ser);
    *out = ser.out;
    result
}

/// One open object: where it starts, where each entry starts, whether the keys came sorted.
#[derive(Default)]
struct Frame {
    /// Offset of the first byte after `{`.
    body_start: usize,
    /// Offset of each entry's opening quote (entries after the first start after a comma).
    entry_starts: Vec<usize>,
    /// The previous key, unescaped, to check the order as keys arrive.
    prev_key: String,
    sorted: bool,
}

struct Serializer {
    out: Vec<u8>,
    /// Stack of open objects; kept across objects so their buffers are re-used.
    frames: Vec<Frame>,
    depth: usize,
}

impl Serializer {
    fn write_str(&mut self, s: &str) {
        let out = &mut self.out;
        out.reserve(s.len() + 2);
        out.push(b'"');
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' || b == b'\\' {
                out.extend_from_slice(&bytes[start..i]);
                out.push(b'\\');
                out.push(b);
                start = i + 1;
            }
        }
        out.extend_from_slice(&bytes[start..]);
        out.push(b'"');
    }

    fn open_object(&mut self) {
        self.out.push(b'{');
        if self.frames.len() <= self.depth {
            self.frames.push(Frame::default());
        }
        let frame = &mut self.frames[self.depth];
        frame.body_start = self.out.len();
        frame.entry_starts.clear();
        frame.prev_key.clear();
        frame.sorted = true;
        self.depth += 1;
    }

    fn begin_key(&mut self, key: &str) -> Result<(), CjsonError> {
        let frame = &mut self.frames[self.depth - 1];
        if !frame.entry_starts.is_empty() {
            self.out.push(b',');
            match key.cmp(frame.prev_key.as_str()) {
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Equal => return Err(CjsonError::DuplicateKey(key.to_owned())),
                std::cmp::Ordering::Less => frame.sorted = false,
            }
        }
        frame.entry_starts.push(self.out.len());
        frame.prev_key.clear();
        frame.prev_key.push_str(key);
        self.write_str(key);
        self.out.push(b':');
        Ok(())
    }

    fn close_object(&mut self) -> Result<(), CjsonError> {
        self.depth -= 1;
        let frame = &mut self.frames[self.depth];
        if !frame.sorted {
            reorder(&mut self.out, frame)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// Re-order the entries of an object whose keys arrived out of order. Rare: only objects
/// built from unordered sources, or structs mixing declared and flattened fields.
fn reorder(out: &mut Vec<u8>, frame: &Frame) -> Result<(), CjsonError> {
    let body = out.split_off(frame.body_start);
    let base = frame.body_start;
    let mut entries: Vec<(String, &[u8])> = Vec::with_capacity(frame.entry_starts.len());
    for (i, &start) in frame.entry_starts.iter().enumerate() {
        let end = match frame.entry_starts.get(i + 1) {
            Some(next) => next - 1, // drop the separating comma
            None => base + body.len(),
        };
        let entry = &body[start - base..end - base];
        entries.push((unescape_key(entry), entry));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for pair in entries.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(CjsonError::DuplicateKey(pair[0].0.clone()));
        }
    }
    for (i, (_, entry)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(entry);
    }
    Ok(())
}

/// The key of an entry `"k\"ey":value`, unescaped.
fn unescape_key(entry: &[u8]) -> String {
    let mut key = Vec::new();
    let mut i = 1;
    while i < entry.len() {
        match entry[i] {
            b'\\' => {
                key.push(entry[i + 1]);
                i += 2;
            }
            b'"' => break,
            b => {
                key.push(b);
                i += 1;
            }
        }
    }
    // The bytes were written from a `&str` with ASCII escapes only, so they are UTF-8.
    String::from_utf8_lossy(&key).into_owned()
}

macro_rules! write_int {
    ($($name:ident: $ty:ty),*) => {$(
        fn $name(self, v: $ty) -> Result<(), CjsonError> {
            let mut buf = itoa::Buffer::new();
            self.out.extend_from_slice(buf.format(v).as_bytes());
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Serializer {
    type Ok = ();
    type Error = CjsonError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Map<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), CjsonError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    write_int!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, v: f32) -> Result<(), CjsonError> {
        Err(CjsonError::Float(v.to_string()))
    }
    fn serialize_f64(self, v: f64) -> Result<(), CjsonError> {
        Err(CjsonError::Float(v.to_string()))
    }
    fn serialize_char(self, v: char) -> Result<(), CjsonError> {
        self.write_str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), CjsonError> {
        self.write_str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CjsonError> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), CjsonError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CjsonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CjsonError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CjsonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CjsonError> {
        self.write_str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CjsonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CjsonError> {
        self.open_object();
        self.begin_key(variant)?;
        value.serialize(&mut *self)?;
        self.close_object()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, CjsonError> {
        self.out.push(b'[');
        Ok(Seq {
            ser: self,
            first: true,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, CjsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Seq<'a>, CjsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, CjsonError> {
        self.open_object();
        self.begin_key(variant)?;
        self.out.push(b'[');
        Ok(Seq {
            ser: self,
            first: true,
            variant: true,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'a>, CjsonError> {
        self.open_object();
        Ok(Map {
            ser: self,
            variant: false,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Map<'a>, CjsonError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Map<'a>, CjsonError> {
        self.open_object();
        self.begin_key(variant)?;
        self.open_object();
        Ok(Map {
            ser: self,
            variant: true,
        })
    }
}

#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct Seq<'a> {
    ser: &'a mut Serializer,
    first: bool,
    variant: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CjsonError> {
        if !self.first {
            self.ser.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.ser)
    }
    fn finish(self) -> Result<(), CjsonError> {
        self.ser.out.push(b']');
        if self.variant {
            self.ser.close_object()?;
        }
        Ok(())
    }
}

macro_rules! seq_impl {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for Seq<'_> {
            type Ok = ();
            type Error = CjsonError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CjsonError> {
                self.element(value)
            }
            fn end(self) -> Result<(), CjsonError> {
                self.finish()
            }
        }
    )*};
}
seq_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct Map<'a> {
    ser: &'a mut Serializer,
    variant: bool,
}

impl Map<'_> {
    fn finish(self) -> Result<(), CjsonError> {
        self.ser.close_object()?;
        if self.variant {
            self.ser.close_object()?;
        }
        Ok(())
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = CjsonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CjsonError> {
        key.serialize(KeySerializer {
            ser: &mut *self.ser,
        })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CjsonError> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), CjsonError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = CjsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CjsonError> {
        self.ser.begin_key(key)?;
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), CjsonError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Map<'_> {
    type Ok = ();
    type Error = CjsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CjsonError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), CjsonError> {
        self.finish()
    }
}

/// Map keys: strings only (as securesystemslib requires); a newtype around a string is fine.
struct KeySerializer<'a> {
    ser: &'a mut Serializer,
}

impl ser::Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = CjsonError;
    type SerializeSeq = ser::Impossible<(), CjsonError>;
    type SerializeTuple = ser::Impossible<(), CjsonError>;
    type SerializeTupleStruct = ser::Impossible<(), CjsonError>;
    type SerializeTupleVariant = ser::Impossible<(), CjsonError>;
    type SerializeMap = ser::Impossible<(), CjsonError>;
    type SerializeStruct = ser::Impossible<(), CjsonError>;
    type SerializeStructVariant = ser::Impossible<(), CjsonError>;

    fn serialize_str(self, v: &str) -> Result<(), CjsonError> {
        self.ser.begin_key(v)
    }
    fn serialize_char(self, v: char) -> Result<(), CjsonError> {
        self.ser.begin_key(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CjsonError> {
        value.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CjsonError> {
        self.ser.begin_key(variant)
    }

    fn serialize_bool(self, _: bool) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_i8(self, _: i8) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_i16(self, _: i16) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_i32(self, _: i32) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_i64(self, _: i64) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_u8(self, _: u8) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_u16(self, _: u16) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_u32(self, _: u32) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_u64(self, _: u64) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_f32(self, _: f32) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_f64(self, _: f64) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_none(self) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_unit(self) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CjsonError> {
        Err(CjsonError::NonStringKey)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CjsonError> {
        Err(CjsonError::NonStringKey)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_escapes_only_quote_and_backslash() {
        let v = json!({"b": 1, "a": [true, null, "x\"y\\z\n\u{e9}"], "A": {"z": -3, "y": {}}});
        let got = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            "{\"A\":{\"y\":{},\"z\":-3},\"a\":[true,null,\"x\\\"y\\\\z\n\u{e9}\"],\"b\":1}"
        );
    }

    #[test]
    fn refuses_floats() {
        assert!(matches!(
            to_vec(&json!({"a": 1.5})),
            Err(CjsonError::Float(_))
        ));
    }

    #[derive(serde::Serialize)]
    struct Unordered {
        zeta: u32,
        alpha: &'static str,
        #[serde(flatten)]
        extra: std::collections::BTreeMap<String, u32>,
    }

    #[test]
    fn reorders_struct_fields_declared_out_of_order() {
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("m\"q".to_string(), 2);
        extra.insert("b".to_string(), 1);
        let v = Unordered {
            zeta: 9,
            alpha: "a",
            extra,
        };
        let got = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(got, "{\"alpha\":\"a\",\"b\":1,\"m\\\"q\":2,\"zeta\":9}");
    }

    #[test]
    fn refuses_duplicate_keys_from_flatten() {
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("zeta".to_string(), 2);
        let v = Unordered {
            zeta: 9,
            alpha: "a",
            extra,
        };
        assert!(matches!(to_vec(&v), Err(CjsonError::DuplicateKey(_))));
    }

    #[test]
    fn escaped_key_order_uses_unescaped_code_points() {
        // '"' (0x22) sorts before '#' (0x23) although its escape '\' (0x5c) would not.
        let v = json!({"a#": 1, "a\"": 2});
        assert_eq!(to_vec(&v).unwrap(), b"{\"a\\\"\":2,\"a#\":1}".to_vec());
    }

    #[test]
    fn matches_olpc_cjson_on_ascii_documents() {
        let v = json!({
            "signed": {"_type": "targets", "version": 3, "expires": "2030-01-01T00:00:00Z",
                "targets": {"dir/a.bin": {"length": 12, "hashes": {"sha256": "ab"},
                    "custom": {"hardwareIds": ["x"], "releaseCounter": 0}}}},
            "signatures": [{"keyid": "k", "sig": "00"}]
        });
        let mut theirs = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut theirs,
            olpc_cjson::CanonicalFormatter::new(),
        );
        serde::Serialize::serialize(&v, &mut ser).unwrap();
        assert_eq!(to_vec(&v).unwrap(), theirs);
    }
}
