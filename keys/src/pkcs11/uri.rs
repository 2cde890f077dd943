//! RFC 7512 `pkcs11:` URIs: which module, token and object hold a key, and where its PIN is.
//!
//! `pkcs11:token=ferry;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin.txt`
//!
//! Path attributes (`;`-separated) select the token and the object; query attributes
//! (`&`-separated) name the module and the PIN. Values are percent-decoded. The PIN never
//! appears in `Debug`, in [`Pkcs11Uri::redacted`] or in an error.
use crate::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const SCHEME: &str = "pkcs11:";

const PATH_ATTRS: &str = "token, manufacturer, serial, model, library-manufacturer, \
     library-description, library-version, object, type, id, slot-description, \
     slot-manufacturer, slot-id";
const QUERY_ATTRS: &str = "module-path, pin-source, pin-value";

/// Which kind of object the URI names (`type=`); only keys make sense for signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Private,
    Public,
}

/// Where the token's user PIN comes from.
#[derive(Clone, Default)]
pub enum PinSource {
    /// No PIN in the URI: the caller may supply one, or the token needs none.
    #[default]
    None,
    /// `pin-source=file:PATH` (or a plain path): the file's content, one trailing newline off.
    File(PathBuf),
    /// `pin-value=...`: the PIN itself.
    Value(Zeroizing<Vec<u8>>),
}

impl fmt::Debug for PinSource {
    // Never the PIN itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::None => f.write_str("None"),
            PinSource::File(p) => f.debug_tuple("File").field(p).finish(),
            PinSource::Value(_) => f.write_str("Value(<hidden>)"),
        }
    }
}

/// A parsed `pkcs11:` URI. Attributes absent from the URI are `None` and match anything.
#[derive(Clone, Debug, Default)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub library_manufacturer: Option<String>,
    pub library_description: Option<String>,
    /// `library-version=M` or `M.N`.
    pub library_version: Option<(u8, u8)>,
    /// The object's label (`CKA_LABEL`).
    pub object: Option<String>,
    pub object_type: Option<ObjectType>,
    /// The object's `CKA_ID`, raw bytes.
    pub id: Option<Vec<u8>>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    pub slot_id: Option<u64>,
    /// The PKCS#11 module (shared library) to load.
    pub module_path: Option<PathBuf>,
    pub pin: PinSource,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Pkcs11Uri(reason.into())
}

/// RFC 3986 unreserved characters.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7512 `pk11-p-special` (path) and `pk11-q-special` (query): what may stand unencoded.
fn allowed(b: u8, in_query: bool) -> bool {
    unreserved(b)
        || matches!(
            b,
            b':' | b'['
                | b']'
                | b'@'
                | b'!'
                | b'$'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
        )
        || (!in_query && b == b'&')
        || (in_query && matches!(b, b'/' | b'?' | b'|'))
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode one attribute value, refusing characters that must have been encoded.
fn decode(name: &str, value: &str, in_query: bool) -> Result<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => {
                    return Err(bad(format!(
                        "attribute '{name}' has a '%' not followed by two hex digits \
                         (expected %XX percent-encoding)"
                    )))
                }
            }
            i += 3;
        } else if allowed(b, in_query) {
            out.push(b);
            i += 1;
        } else {
            // Not even one character of a PIN in a message.
            let shown = match name {
                "pin-value" => "a character".to_owned(),
                _ => format!("{:?}", value[i..].chars().next().unwrap_or('?')),
            };
            return Err(bad(format!(
                "attribute '{name}' holds {shown}, which must be percent-encoded in a \
                 pkcs11 URI {} (RFC 7512)",
                if in_query { "query" } else { "path" }
            )));
        }
    }
    Ok(out)
}

fn text(name: &str, raw: Vec<u8>) -> Result<String> {
    String::from_utf8(raw).map_err(|_| {
        bad(format!(
            "attribute '{name}' is not UTF-8 once percent-decoded (expected text)"
        ))
    })
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(bad(format!(
            "attribute '{name}' is given twice (expected at most once)"
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_version(raw: &str) -> Option<(u8, u8)> {
    let (major, minor) = raw.split_once('.').unwrap_or((raw, "0"));
    let num = |s: &str| -> Option<u8> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    Some((num(major)?, num(minor)?))
}

/// A `pin-source` value: a `file:` URI (`file:PATH`, `file:///PATH`) or a plain path.
fn pin_file(raw: &str) -> Result<PathBuf> {
    let path = match raw.strip_prefix("file:") {
        Some(rest) => match rest.strip_prefix("//") {
            // file://host/path: only the local host (empty or "localhost") is meaningful.
            Some(authority_and_path) => {
                let slash = authority_and_path
                    .find('/')
                    .unwrap_or(authority_and_path.len());
                let host = &authority_and_path[..slash];
                if !host.is_empty() && host != "localhost" {
                    return Err(bad(format!(
                        "pin-source names host '{host}' (expected a local file: file:PATH or file:///PATH)"
                    )));
                }
                &authority_and_path[slash..]
            }
            None => rest,
        },
        None if raw.contains(':') && !raw.starts_with(['/', '.']) => {
            let scheme = raw.split(':').next().unwrap_or_default();
            return Err(bad(format!(
                "pin-source scheme '{scheme}:' is not supported (expected file:PATH or a plain path)"
            )));
        }
        None => raw,
    };
    if path.is_empty() {
        return Err(bad("pin-source names no file (expected file:PATH)"));
    }
    Ok(PathBuf::from(path))
}

impl Pkcs11Uri {
    /// The longest URI accepted: longer than any real one, a bound on what a hostile
    /// argument makes us decode.
    pub const MAX_LEN: usize = 4096;

    /// Whether `s` is meant as a pkcs11 URI (and not as a file name).
    pub fn is_pkcs11(s: &str) -> bool {
        s.get(..SCHEME.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SCHEME))
    }

    /// Parse a `pkcs11:` URI. The error names the attribute and what was expected.
    pub fn parse(s: &str) -> Result<Pkcs11Uri> {
        if s.len() > Self::MAX_LEN {
            return Err(bad(format!(
                "URI is {} bytes (at most {} accepted)",
                s.len(),
                Self::MAX_LEN
            )));
        }
        if !Self::is_pkcs11(s) {
            return Err(bad("URI does not start with 'pkcs11:'"));
        }
        let rest = &s[SCHEME.len()..];
        if rest.contains('#') {
            return Err(bad(
                "URI has a '#' fragment (expected none; percent-encode '#' as %23)",
            ));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            uri.path_attr(attr)?;
        }
        for attr in query.into_iter().flat_map(|q| q.split('&')) {
            if !attr.is_empty() {
                uri.query_attr(attr)?;
            }
        }
        Ok(uri)
    }

    fn path_attr(&mut self, attr: &str) -> Result<()> {
        let (name, value) = attr.split_once('=').ok_or_else(|| {
            bad(format!(
                "path attribute {:?} has no '=' (expected name=value)",
                shorten(attr)
            ))
        })?;
        if value.is_empty() {
            return Err(bad(format!(
                "attribute '{name}' is empty (expected a value)"
            )));
        }
        let raw = decode(name, value, false)?;
        match name {
            "token" => set(&mut self.token, name, text(name, raw)?),
            "manufacturer" => set(&mut self.manufacturer, name, text(name, raw)?),
            "serial" => set(&mut self.serial, name, text(name, raw)?),
            "model" => set(&mut self.model, name, text(name, raw)?),
            "library-manufacturer" => set(&mut self.library_manufacturer, name, text(name, raw)?),
            "library-description" => set(&mut self.library_description, name, text(name, raw)?),
            "library-version" => {
                let v = text(name, raw)?;
                let parsed = parse_version(&v).ok_or_else(|| {
                    bad(format!(
                        "library-version {v:?} is not a version (expected M or M.N, each 0-255)"
                    ))
                })?;
                set(&mut self.library_version, name, parsed)
            }
            "object" => set(&mut self.object, name, text(name, raw)?),
            "type" => {
                let t = match text(name, raw)?.as_str() {
                    "private" => ObjectType::Private,
                    "public" => ObjectType::Public,
                    other => {
                        return Err(bad(format!(
                            "type={other:?} names no key (expected private or public)"
                        )))
                    }
                };
                set(&mut self.object_type, name, t)
            }
            "id" => set(&mut self.id, name, raw),
            "slot-description" => set(&mut self.slot_description, name, text(name, raw)?),
            "slot-manufacturer" => set(&mut self.slot_manufacturer, name, text(name, raw)?),
            "slot-id" => {
                let v = text(name, raw)?;
                let id = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| v.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        bad(format!(
                            "slot-id {v:?} is not a decimal slot number (expected e.g. slot-id=0)"
                        ))
                    })?;
                set(&mut self.slot_id, name, id)
            }
            other => Err(bad(format!(
                "path attribute {:?} is not supported (expected one of {PATH_ATTRS}; \
                 query attributes such as module-path go after '?')",
                shorten(other)
            ))),
        }
    }

    fn query_attr(&mut self, attr: &str) -> Result<()> {
        let (name, value) = attr.split_once('=').ok_or_else(|| {
            bad(format!(
                "query attribute {:?} has no '=' (expected name=value)",
                name_part(attr)
            ))
        })?;
        if value.is_empty() {
            return Err(bad(format!(
                "attribute '{name}' is empty (expected a value)"
            )));
        }
        let raw = decode(name, value, true)?;
        match name {
            "module-path" => {
                let path = PathBuf::from(text(name, raw)?);
                set(&mut self.module_path, name, path)
            }
            "pin-source" | "pin-value" => {
                if !matches!(self.pin, PinSource::None) {
                    return Err(bad(
                        "the PIN is given twice (expected one pin-source or pin-value)",
                    ));
                }
                self.pin = if name == "pin-value" {
                    PinSource::Value(Zeroizing::new(raw))
                } else {
                    PinSource::File(pin_file(&text(name, raw)?)?)
                };
                Ok(())
            }
            "module-name" => Err(bad(
                "module-name is not supported (expected module-path=/path/to/module.so)",
            )),
            other => Err(bad(format!(
                "query attribute {:?} is not supported (expected one of {QUERY_ATTRS}; \
                 token and object attributes go before '?', separated by ';')",
                shorten(other)
            ))),
        }
    }

    /// The module to load, or an error saying how to name one.
    pub fn module(&self) -> Result<&Path> {
        self.module_path.as_deref().ok_or_else(|| {
            bad(
                "no module-path (expected ?module-path=/path/to/pkcs11-module.so, e.g. \
                 /usr/lib/softhsm/libsofthsm2.so)",
            )
        })
    }

    /// Whether the URI carries a PIN (`pin-source` or `pin-value`).
    pub fn has_pin(&self) -> bool {
        !matches!(self.pin, PinSource::None)
    }

    /// The URI written back without its PIN value (a `pin-source` file name is kept), for
    /// messages and logs. Without a `pin-value` it parses back to the same selection (unless
    /// percent-encoding made it longer than [`Pkcs11Uri::MAX_LEN`]); a
    /// hidden `pin-value` is written as `<hidden>`, which does not parse, so a copied message
    /// cannot send a wrong PIN to a token (and count towards locking it).
    pub fn redacted(&self) -> String {
        let mut path = Vec::new();
        let mut push = |name: &str, value: Option<&[u8]>| {
            if let Some(v) = value {
                path.push(format!("{name}={}", encode(v, false)));
            }
        };
        push("token", self.token.as_deref().map(str::as_bytes));
        push(
            "manufacturer",
            self.manufacturer.as_deref().map(str::as_bytes),
        );
        push("serial", self.serial.as_deref().map(str::as_bytes));
        push("model", self.model.as_deref().map(str::as_bytes));
        push(
            "library-manufacturer",
            self.library_manufacturer.as_deref().map(str::as_bytes),
        );
        push(
            "library-description",
            self.library_description.as_deref().map(str::as_bytes),
        );
        let version = self
            .library_version
            .map(|(major, minor)| format!("{major}.{minor}"));
        push("library-version", version.as_deref().map(str::as_bytes));
        push(
            "slot-description",
            self.slot_description.as_deref().map(str::as_bytes),
        );
        push(
            "slot-manufacturer",
            self.slot_manufacturer.as_deref().map(str::as_bytes),
        );
        let slot = self.slot_id.map(|s| s.to_string());
        push("slot-id", slot.as_deref().map(str::as_bytes));
        push("object", self.object.as_deref().map(str::as_bytes));
        let kind = self.object_type.map(|t| match t {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
        });
        push("type", kind.map(str::as_bytes));
        push("id", self.id.as_deref());
        let mut query = Vec::new();
        if let Some(m) = &self.module_path {
            query.push(format!(
                "module-path={}",
                encode(m.to_string_lossy().as_bytes(), true)
            ));
        }
        match &self.pin {
            PinSource::None => {}
            PinSource::File(p) => {
                let path = p.to_string_lossy();
                // file:PATH, with an empty authority when PATH itself starts with "//".
                let authority = if path.starts_with("//") { "//" } else { "" };
                query.push(format!(
                    "pin-source=file:{authority}{}",
                    encode(path.as_bytes(), true)
                ))
            }
            PinSource::Value(_) => query.push("pin-value=<hidden>".to_owned()),
        }
        let mut out = format!("{SCHEME}{}", path.join(";"));
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query.join("&"));
        }
        out
    }
}

fn encode(bytes: &[u8], in_query: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if allowed(b, in_query) && b != b'=' && b != b'&' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The leading name characters of an attribute, never what follows (it may be a PIN).
fn name_part(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect()
}

/// At most 40 characters of hostile input in a message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=ferry;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin.txt",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("ferry"));
        assert_eq!(uri.object.as_deref(), Some("root-1"));
        assert_eq!(
            uri.module().unwrap(),
            Path::new("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert!(matches!(&uri.pin, PinSource::File(p) if p == Path::new("pin.txt")));
    }

    #[test]
    fn percent_decodes_ids_labels_and_paths() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:object=my%20key;id=%01%02%ff;slot-id=3;type=private;library-version=2.6?\
             module-path=/opt/a%20b/m.so&pin-value=12%2634",
        )
        .unwrap();
        assert_eq!(uri.object.as_deref(), Some("my key"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8, 2, 0xff][..]));
        assert_eq!(uri.slot_id, Some(3));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(uri.library_version, Some((2, 6)));
        assert_eq!(uri.module_path.as_deref(), Some(Path::new("/opt/a b/m.so")));
        assert!(matches!(&uri.pin, PinSource::Value(v) if v.as_slice() == b"12&34"));
    }

    #[test]
    fn pin_sources_as_file_uris_or_plain_paths() {
        for (given, want) in [
            ("file:/run/pin", "/run/pin"),
            ("file:///run/pin", "/run/pin"),
            ("file://localhost/run/pin", "/run/pin"),
            ("/run/pin", "/run/pin"),
            ("pin.txt", "pin.txt"),
        ] {
            let uri = Pkcs11Uri::parse(&format!("pkcs11:token=t?pin-source={given}")).unwrap();
            assert!(
                matches!(&uri.pin, PinSource::File(p) if p == Path::new(want)),
                "{given}"
            );
        }
        let err = Pkcs11Uri::parse("pkcs11:token=t?pin-source=https://x/pin").unwrap_err();
        assert!(err.to_string().contains("file:PATH"), "{err}");
        let err = Pkcs11Uri::parse("pkcs11:token=t?pin-source=file://other/pin").unwrap_err();
        assert!(err.to_string().contains("host 'other'"), "{err}");
    }

    #[test]
    fn errors_name_what_was_expected() {
        for (uri, expect) in [
            ("file:/x", "'pkcs11:'"),
            ("pkcs11:tokn=a", "expected one of token"),
            ("pkcs11:token=a;token=b", "given twice"),
            ("pkcs11:token", "no '='"),
            ("pkcs11:token=", "empty"),
            ("pkcs11:id=%zz", "two hex digits"),
            ("pkcs11:object=a b", "percent-encoded"),
            ("pkcs11:object=a/b", "percent-encoded"),
            ("pkcs11:slot-id=x", "decimal"),
            ("pkcs11:type=cert", "private or public"),
            ("pkcs11:token=%ff", "UTF-8"),
            ("pkcs11:?module-name=softhsm2", "module-path"),
            ("pkcs11:?pin-value=1&pin-source=f", "PIN is given twice"),
            ("pkcs11:?module-path=a&module-path=b", "given twice"),
            ("pkcs11:token=a#frag", "fragment"),
            ("pkcs11:token=a?token=b", "query attribute"),
        ] {
            let err = Pkcs11Uri::parse(uri).unwrap_err().to_string();
            assert!(err.contains(expect), "{uri}: {err}");
        }
        let err = Pkcs11Uri::parse("pkcs11:token=a")
            .unwrap()
            .module()
            .unwrap_err();
        assert!(err.to_string().contains("module-path"), "{err}");
    }

    #[test]
    fn the_pin_is_never_shown() {
        let uri = Pkcs11Uri::parse("pkcs11:token=t;object=o?pin-value=SECRETPIN").unwrap();
        assert!(!format!("{uri:?}").contains("SECRETPIN"));
        assert!(!uri.redacted().contains("SECRETPIN"));
        assert!(uri.redacted().contains("pin-value=<hidden>"));
        // A bad PIN attribute does not echo its value either.
        let err = Pkcs11Uri::parse("pkcs11:token=t?pin-value=SECRET PIN").unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn redacted_form_parses_back_to_the_same_selection() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=a%3Bb;object=k%3D1;id=%00%41?module-path=/m.so&pin-source=file:/p",
        )
        .unwrap();
        let again = Pkcs11Uri::parse(&uri.redacted()).unwrap();
        assert_eq!(again.token.as_deref(), Some("a;b"));
        assert_eq!(again.object.as_deref(), Some("k=1"));
        assert_eq!(again.id.as_deref(), Some(&[0u8, 0x41][..]));
        assert_eq!(again.module_path, uri.module_path);
    }
}
