//! A cache of parsed ECU keys, shared by both backends, keyed by a key's JSON exactly as the
//! database holds it, not by VIN or serial: an ECU whose key changes in the database (through
//! this process or any other Director on the same database) reads other text and misses, so
//! an entry can never be stale and nothing needs invalidating.

use crate::{Error, Result};
use ferry_keys::{IdentifiedKey, PublicKey};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Parsed keys kept at most (about 400 bytes each); past that the cache starts over, so a
/// fleet larger than this still works, with more parsing.
const MAX_KEYS: usize = 1 << 16;

#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    parsed: Mutex<HashMap<String, IdentifiedKey>>,
}

impl KeyCache {
    /// The key stored as `json`, with its id and its verifying key parsed.
    pub(crate) fn key(&self, json: &str) -> Result<IdentifiedKey> {
        let lock = || self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = lock().get(json) {
            return Ok(key.clone());
        }
        let key: PublicKey =
            serde_json::from_str(json).map_err(|e| Error::corrupt("ECU public key", e))?;
        // Registration refuses a key without an id, so only a database changed behind the
        // Director's back holds one.
        let key = IdentifiedKey::new(key).map_err(|e| Error::corrupt("ECU public key", e))?;
        // Clones share the parsed verifying key. A key that does not parse is not kept, so
        // verification fails on it later with its own precise error.
        if key.key().prepare().is_ok() {
            let mut parsed = lock();
            if parsed.len() >= MAX_KEYS {
                parsed.clear();
            }
            parsed.insert(json.to_owned(), key.clone());
        }
        Ok(key)
    }
}
