//! Across a data diode or on a USB stick (no uplink at all): `ferry relay export` writes the
//! queued manifests to a directory for carrying out, `ferry admin relay import` feeds them to
//! the Director.
//!
//! The directory: `index.json` (format, relay name, and for each manifest in arrival order its
//! file, VIN, receipt time, length and SHA-256), `index.mac` and `manifests/NNNNNNNN.json`,
//! each the body exactly as the vehicle sent it. Tamper evidence: each manifest is signed by
//! the vehicle's ECU keys and carries a nonce the Director accepts once; the index pins each
//! file's length and digest, checked on import before anything is sent; and `index.mac`, hex
//! HMAC-SHA-256 of index.json's exact bytes keyed with the SHA-256 of the relay's token secret
//! (which the Director stores, and checks before any manifest is sent), makes a dropped,
//! reordered or re-dated entry evident on the way. The relay holds no signing key: the MAC
//! says which registered relay wrote the index, and nothing more.

use crate::db::Db;
use crate::error::{io_at, Error, Result};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::Path;

pub const FORMAT: &str = "ferry-relay-export/1";
/// The file beside index.json holding its MAC.
pub const MAC_FILE: &str = "index.mac";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub file: String,
    pub vin: String,
    pub received_at: String,
    pub length: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: String,
    pub relay: String,
    pub manifests: Vec<Entry>,
}

/// The relay's name, from its token (`ferry-relay:NAME:SECRET`).
pub fn relay_name(token: &str) -> String {
    token
        .strip_prefix("ferry-relay:")
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(name, _)| name.to_owned())
        .unwrap_or_default()
}

/// The MAC key of the relay with this token: the SHA-256 of its secret, as the Director
/// stores it.
pub fn mac_key(token: &str) -> [u8; 32] {
    let secret = token
        .strip_prefix("ferry-relay:")
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(_, secret)| secret)
        .unwrap_or_default();
    Sha256::digest(secret.as_bytes()).into()
}

/// Hex HMAC-SHA-256 of `index` (index.json's bytes) under `key`.
pub fn index_mac(key: &[u8], index: &[u8]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(index);
    hex::encode(mac.finalize().into_bytes())
}

/// Write every queued manifest of the relay with token `token` to `out` (a new or empty
/// directory), the index and its MAC, and take them off the queue once all are on disk
/// (synced). Returns the index written.
pub fn export(db: &Db, token: &str, out: &Path) -> Result<Index> {
    let relay = relay_name(token);
    let relay = relay.as_str();
    if out.exists() && std::fs::read_dir(out).map_err(io_at(out))?.next().is_some() {
        return Err(Error::Config {
            path: out.to_owned(),
            reason:
                "export check failed: the directory is not empty; expected a new or empty directory"
                    .into(),
        });
    }
    let dir = out.join("manifests");
    std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
    let queued = db.queued()?;
    let mut manifests = Vec::new();
    for q in &queued {
        let file = format!("manifests/{:08}.json", q.id);
        let path = out.join(&file);
        write_synced(&path, &q.body)?;
        manifests.push(Entry {
            file,
            vin: q.vin.clone(),
            received_at: q.received_at.clone(),
            length: q.body.len() as u64,
            sha256: hex::encode(Sha256::digest(&q.body)),
        });
    }
    let index = Index {
        format: FORMAT.into(),
        relay: relay.to_owned(),
        manifests,
    };
    let text = serde_json::to_vec_pretty(&index).map_err(|e| Error::Config {
        path: out.to_owned(),
        reason: e.to_string(),
    })?;
    write_synced(&out.join("index.json"), &text)?;
    write_synced(
        &out.join(MAC_FILE),
        format!("{}\n", index_mac(&mac_key(token), &text)).as_bytes(),
    )?;
    for q in &queued {
        db.dequeue(q.id, "exported")?;
    }
    Ok(index)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_at(path))?;
    f.write_all(bytes).map_err(io_at(path))?;
    f.sync_all().map_err(io_at(path))
}

/// An exported directory, read and checked.
#[derive(Debug, Clone)]
pub struct Export {
    pub index: Index,
    /// index.json's exact bytes, and the MAC `index.mac` gives them (for the Director to check).
    pub index_json: Vec<u8>,
    pub mac: String,
    /// Each manifest's body, in the index's order.
    pub bodies: Vec<Vec<u8>>,
}

/// Read and check an exported directory: the index's format, and each file's length and
/// digest. The MAC is read, not checked: only the Director holds its key.
pub fn read_export(dir: &Path) -> Result<Export> {
    let bad = |reason: String| Error::Config {
        path: dir.to_owned(),
        reason,
    };
    let index_path = dir.join("index.json");
    let text = std::fs::read(&index_path).map_err(io_at(&index_path))?;
    let mac_path = dir.join(MAC_FILE);
    let mac = std::fs::read_to_string(&mac_path)
        .map_err(|e| {
            bad(format!(
                "{MAC_FILE} check failed: {e}; expected the MAC `ferry relay export` writes beside index.json"
            ))
        })?
        .trim()
        .to_owned();
    if mac.len() != 64 || hex::decode(&mac).is_err() {
        return Err(bad(format!(
            "{MAC_FILE} check failed: not 64 hex digits; expected an HMAC-SHA-256"
        )));
    }
    let index: Index = serde_json::from_slice(&text).map_err(|e| {
        bad(format!(
            "index.json check failed: {e}; expected what `ferry relay export` writes"
        ))
    })?;
    if index.format != FORMAT {
        return Err(bad(format!(
            "index.json check failed: format {:?}; expected {FORMAT:?}",
            index.format
        )));
    }
    let mut bodies = Vec::new();
    for e in &index.manifests {
        let name = Path::new(&e.file);
        if name.components().count() != 2 || !e.file.starts_with("manifests/") {
            return Err(bad(format!(
                "index.json check failed: file {:?} is not under manifests/",
                e.file
            )));
        }
        let path = dir.join(name);
        let meta = std::fs::metadata(&path).map_err(io_at(&path))?;
        if meta.len() != e.length || meta.len() > 1 << 20 {
            return Err(bad(format!(
                "length check failed: {} is {} bytes; expected {} as index.json says",
                e.file,
                meta.len(),
                e.length
            )));
        }
        let body = std::fs::read(&path).map_err(io_at(&path))?;
        let digest = hex::encode(Sha256::digest(&body));
        if digest != e.sha256 {
            return Err(bad(format!(
                "hash check failed: {} sha256 is {digest}; expected {} as index.json says",
                e.file, e.sha256
            )));
        }
        bodies.push(body);
    }
    Ok(Export {
        index,
        index_json: text,
        mac,
        bodies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_empties_the_queue_and_a_changed_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("cache")).expect("open");
        db.enqueue("V1", b"{\"a\":1}", "2026-01-01T00:00:00+00:00", 10)
            .expect("q");
        db.enqueue("V2", b"{\"b\":2}", "2026-01-01T00:00:01+00:00", 10)
            .expect("q");
        let out = dir.path().join("out");
        let token = "ferry-relay:yard-7:abc";
        let index = export(&db, token, &out).expect("export");
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(db.queue_stats().expect("stats").0, 0);
        assert_eq!(db.counter("exported").expect("counter"), 2);
        let read = read_export(&out).expect("read");
        assert_eq!(read.index.relay, "yard-7");
        assert_eq!(read.bodies[1], b"{\"b\":2}");
        // The MAC is over index.json's bytes, keyed with the SHA-256 of the token's secret.
        let key: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(read.mac, index_mac(&key, &read.index_json));
        assert_ne!(
            read.mac,
            index_mac(&Sha256::digest(b"abd"), &read.index_json)
        );
        assert!(
            export(&db, token, &out).is_err(),
            "never into a non-empty directory"
        );
        std::fs::write(out.join(&index.manifests[0].file), b"{\"a\":2}").expect("tamper");
        let e = read_export(&out).expect_err("tampered").to_string();
        assert!(e.contains("hash check failed"), "{e}");
        assert_eq!(relay_name("ferry-relay:yard-7:abc"), "yard-7");
        assert_eq!(mac_key(token), key);
        // RFC 4231, test case 2: the MAC is standard HMAC-SHA-256.
        assert_eq!(
            index_mac(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
