//! Across a data diode or on a USB stick (no uplink at all): `ferry relay export` writes the
//! queued manifests to a directory for carrying out, `ferry admin relay import` feeds them to
//! the Director.
//!
//! The directory: `index.json` (format, relay name, and for each manifest in arrival order its
//! file, VIN, receipt time, length and SHA-256) and `manifests/NNNNNNNN.json`, each the body
//! exactly as the vehicle sent it. Tamper evidence: each manifest is signed by the vehicle's
//! ECU keys and carries a nonce the Director accepts once; the index pins each file's
//! length and digest, checked on import before anything is sent.

use crate::db::Db;
use crate::error::{io_at, Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

pub const FORMAT: &str = "ferry-relay-export/1";

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

/// Write every queued manifest to `out` (a new or empty directory) and take them off the
/// queue once all are on disk (synced). Returns the index written.
pub fn export(db: &Db, relay: &str, out: &Path) -> Result<Index> {
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

/// Read and check an exported directory: the index's format, and each file's length and
/// digest. The manifests, in order, with their bodies.
pub fn read_export(dir: &Path) -> Result<(Index, Vec<Vec<u8>>)> {
    let bad = |reason: String| Error::Config {
        path: dir.to_owned(),
        reason,
    };
    let index_path = dir.join("index.json");
    let text = std::fs::read(&index_path).map_err(io_at(&index_path))?;
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
    Ok((index, bodies))
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
        let index = export(&db, "yard-7", &out).expect("export");
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(db.queue_stats().expect("stats").0, 0);
        assert_eq!(db.counter("exported").expect("counter"), 2);
        let (read, bodies) = read_export(&out).expect("read");
        assert_eq!(read.relay, "yard-7");
        assert_eq!(bodies[1], b"{\"b\":2}");
        assert!(
            export(&db, "yard-7", &out).is_err(),
            "never into a non-empty directory"
        );
        std::fs::write(out.join(&index.manifests[0].file), b"{\"a\":2}").expect("tamper");
        let e = read_export(&out).expect_err("tampered").to_string();
        assert!(e.contains("hash check failed"), "{e}");
        assert_eq!(relay_name("ferry-relay:yard-7:abc"), "yard-7");
    }
}
