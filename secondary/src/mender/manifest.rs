//! The `version` part and the `manifest`: one line `<sha256 hex>  <part>` per part.

use super::refuse;
use crate::error::Result;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Lines a manifest may have: the payload files plus a few parts.
const MAX_LINES: usize = 8192;

/// `{"format":"mender","version":3}`, any JSON spacing.
pub(super) fn check_version(bytes: &[u8]) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Version {
        format: String,
        version: u64,
    }
    let v: Version = serde_json::from_slice(bytes)
        .map_err(|e| refuse("artifact version", format!("version is not JSON: {e}")))?;
    if v.format != "mender" || v.version != 3 {
        return Err(refuse(
            "artifact version",
            format!(
                "format {:?} version {}; expected format \"mender\" version 3",
                v.format, v.version
            ),
        ));
    }
    Ok(())
}

#[derive(Debug)]
pub(super) struct Manifest {
    hashes: BTreeMap<String, [u8; 32]>,
    /// Parts checked so far (a RefCell: checks happen through shared references while the
    /// manifest is also read for lookups).
    seen: RefCell<BTreeSet<String>>,
}

impl Manifest {
    pub(super) fn parse(bytes: &[u8]) -> Result<Manifest> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| refuse("manifest", "the manifest is not UTF-8"))?;
        let mut hashes = BTreeMap::new();
        for (n, line) in text.lines().filter(|l| !l.is_empty()).enumerate() {
            if n >= MAX_LINES {
                return Err(refuse("manifest", format!("more than {MAX_LINES} lines")));
            }
            let (hex_hash, name) = line.split_once("  ").ok_or_else(|| {
                refuse(
                    "manifest",
                    format!("line {}: expected `<sha256 hex>  <part>`", n + 1),
                )
            })?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(hex_hash, &mut hash).map_err(|_| {
                refuse(
                    "manifest",
                    format!("line {}: {hex_hash:?} is not a sha256 in hex", n + 1),
                )
            })?;
            if hashes.insert(name.to_owned(), hash).is_some() {
                return Err(refuse("manifest", format!("{name:?} is listed twice")));
            }
        }
        Ok(Manifest {
            hashes,
            seen: RefCell::new(BTreeSet::new()),
        })
    }

    /// `part`'s sha256 is `found` (None: it was never read).
    pub(super) fn check(&self, part: &str, found: Option<&[u8; 32]>) -> Result<()> {
        let expected = self.hashes.get(part).ok_or_else(|| {
            refuse(
                "manifest",
                format!("the artifact carries {part}, which its manifest does not list"),
            )
        })?;
        let found = found.ok_or_else(|| refuse("part order", format!("{part} was not read")))?;
        if found != expected {
            return Err(refuse(
                "manifest checksum",
                format!(
                    "{part} has sha256 {}; the manifest says {}",
                    hex::encode(found),
                    hex::encode(expected)
                ),
            ));
        }
        if !self.seen.borrow_mut().insert(part.to_owned()) {
            return Err(refuse("manifest", format!("{part} appears twice")));
        }
        Ok(())
    }

    /// Every listed part was carried.
    pub(super) fn all_seen(&self) -> Result<()> {
        let seen = self.seen.borrow();
        match self.hashes.keys().find(|k| !seen.contains(*k)) {
            Some(missing) => Err(refuse(
                "manifest",
                format!("the manifest lists {missing}, which the artifact does not carry"),
            )),
            None => Ok(()),
        }
    }
}
