//! Into a site whose relay never reaches the backend (issue #20): `ferry admin relay pack`
//! writes what the site's vehicles need to a directory, `ferry relay import` loads it into the
//! relay's cache, as if the relay had fetched it upstream.
//!
//! The directory:
//! - `pack.json`: format, relay name, creation time; per vehicle its VIN, the SHA-256 of its
//!   device token secret (the relay tells the vehicle from a stranger with it) and its
//!   Director metadata files; the Image repository files; each file with its length and
//!   SHA-256;
//! - `director/VIN/FILE`: Director metadata exactly as the device API serves it;
//! - `image-repo/metadata/…`, `image-repo/targets/…`: Image repository files exactly as
//!   `ferry repo serve` serves them;
//! - `bundles/NAME/…`: offline-update bundles (PURE-2 layout, as `ferry admin bundle create
//!   --out DIR` wrote them), placed by the import in the relay's `cache_dir/bundles/NAME/`
//!   for `ferry-primary offline --bundle DIR` (a stick, or a share the vehicles mount as
//!   their `[offline] source`).
//!
//! Nothing in it is trusted: vehicles verify every signature and hash as if the backend had
//! served it. The index's lengths and digests catch a file changed or cut on the way, before
//! anything is loaded; a pack for another relay is refused.

use crate::db::Db;
use crate::error::{io_at, Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "ferry-relay-pack/1";
pub const INDEX: &str = "pack.json";

/// One file of the pack, its path relative to the pack's directory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackFile {
    pub path: String,
    pub length: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackVehicle {
    pub vin: String,
    /// Hex SHA-256 of the vehicle's device token secret; None: it has none (certificates).
    pub device_token_sha256: Option<String>,
    /// `director/VIN/FILE`.
    pub files: Vec<PackFile>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackIndex {
    pub format: String,
    pub relay: String,
    pub created_at: String,
    pub vehicles: Vec<PackVehicle>,
    /// `image-repo/metadata/…` and `image-repo/targets/…`.
    pub image_repo: Vec<PackFile>,
    /// Offline-update bundles (absent in packs without any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<PackBundle>,
}

/// One offline-update bundle of the pack: its name and its files, `bundles/NAME/…`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackBundle {
    pub name: String,
    pub files: Vec<PackFile>,
}

/// The directory bundles are placed in, under the relay's `cache_dir`.
pub const BUNDLES_DIR: &str = "bundles";

/// Whether `rel` is a relative path whose every segment stays where it is put.
pub fn safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && !seg.contains('\\')
                && !seg.bytes().any(|b| b.is_ascii_control())
        })
}

/// A name the relay puts in a path or a database key: a VIN or a metadata file name.
pub fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The mirror key (`metadata/…` or `targets/…`) of an `image-repo/…` path, if it is one whose
/// every segment stays inside the mirror.
pub fn mirror_key(path: &str) -> Option<&str> {
    let key = path.strip_prefix("image-repo/")?;
    let (area, rest) = key.split_once('/')?;
    let ok = matches!(area, "metadata" | "targets") && safe_relative(rest);
    ok.then_some(key)
}

/// Writes a pack: files first (each synced, never over an existing one), the index last.
#[derive(Debug)]
pub struct PackWriter {
    dir: PathBuf,
}

impl PackWriter {
    /// Start a pack in `dir`, new or empty.
    pub fn create(dir: &Path) -> Result<PackWriter> {
        if dir.exists() && std::fs::read_dir(dir).map_err(io_at(dir))?.next().is_some() {
            return Err(Error::Config {
                path: dir.to_owned(),
                reason: "pack check failed: the directory is not empty; expected a new or empty directory".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        Ok(PackWriter {
            dir: dir.to_owned(),
        })
    }

    /// The pack's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `path` (relative) from `from`, at most `max` bytes; its entry for the index.
    pub fn write(&self, path: &str, from: &mut dyn Read, max: u64) -> Result<PackFile> {
        let dest = self.dir.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(io_at(&dest))?;
        let (length, sha256) = copy_hashed(from, &mut f, max, &dest)?;
        f.sync_all().map_err(io_at(&dest))?;
        Ok(PackFile {
            path: path.to_owned(),
            length,
            sha256,
        })
    }

    /// Write the index: the pack is complete.
    pub fn finish(self, index: &PackIndex) -> Result<PathBuf> {
        let bytes = serde_json::to_vec_pretty(index).map_err(|e| Error::Config {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        let mut from = bytes.as_slice();
        self.write(INDEX, &mut from, u64::MAX)?;
        Ok(self.dir)
    }
}

/// Copy `from` into `to` (at most `max` bytes); the length and hex SHA-256.
fn copy_hashed(
    from: &mut dyn Read,
    to: &mut dyn Write,
    max: u64,
    at: &Path,
) -> Result<(u64, String)> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let got = from.read(&mut buf).map_err(io_at(at))?;
        if got == 0 {
            break;
        }
        n += got as u64;
        if n > max {
            return Err(Error::TooLarge {
                what: at.display().to_string(),
                len: n,
                max,
            });
        }
        hash.update(&buf[..got]);
        to.write_all(&buf[..got]).map_err(io_at(at))?;
    }
    Ok((n, hex::encode(hash.finalize())))
}

/// Read a pack's index and check its shape: format, relay, every path.
pub fn read_index(dir: &Path) -> Result<PackIndex> {
    let bad = |reason: String| Error::Config {
        path: dir.to_owned(),
        reason,
    };
    let path = dir.join(INDEX);
    let meta = std::fs::metadata(&path).map_err(io_at(&path))?;
    if meta.len() > 64 << 20 {
        return Err(bad(format!(
            "{INDEX} check failed: {} bytes; expected at most 64 MiB",
            meta.len()
        )));
    }
    let text = std::fs::read(&path).map_err(io_at(&path))?;
    let index: PackIndex = serde_json::from_slice(&text).map_err(|e| {
        bad(format!(
            "{INDEX} check failed: {e}; expected what `ferry admin relay pack` writes"
        ))
    })?;
    if index.format != FORMAT {
        return Err(bad(format!(
            "{INDEX} check failed: format {:?}; expected {FORMAT:?}",
            index.format
        )));
    }
    for v in &index.vehicles {
        if !plain(&v.vin) {
            return Err(bad(format!(
                "{INDEX} check failed: VIN {:?} is not a plain name",
                v.vin
            )));
        }
        let prefix = format!("director/{}/", v.vin);
        for f in &v.files {
            let name = f.path.strip_prefix(&prefix).unwrap_or_default();
            if !plain(name) {
                return Err(bad(format!(
                    "{INDEX} check failed: {:?} is not a file of {prefix}",
                    f.path
                )));
            }
        }
        if let Some(h) = &v.device_token_sha256 {
            if h.len() != 64 || hex::decode(h).is_err() {
                return Err(bad(format!(
                    "{INDEX} check failed: vehicle {}'s device_token_sha256 is not 64 hex digits",
                    v.vin
                )));
            }
        }
    }
    for f in &index.image_repo {
        if mirror_key(&f.path).is_none() {
            return Err(bad(format!(
                "{INDEX} check failed: {:?} is not under image-repo/metadata/ or image-repo/targets/",
                f.path
            )));
        }
    }
    for b in &index.bundles {
        if !plain(&b.name) || index.bundles.iter().filter(|o| o.name == b.name).count() > 1 {
            return Err(bad(format!(
                "{INDEX} check failed: bundle name {:?} is not a plain name or appears twice",
                b.name
            )));
        }
        let prefix = format!("{BUNDLES_DIR}/{}/", b.name);
        for f in &b.files {
            if !f.path.strip_prefix(&prefix).is_some_and(safe_relative) {
                return Err(bad(format!(
                    "{INDEX} check failed: {:?} is not a file of {prefix}",
                    f.path
                )));
            }
        }
    }
    Ok(index)
}

/// Copy the pack's `file` to `to` (made durable), checking its length and SHA-256 against the
/// index; a copy that fails the check is removed.
fn stage(dir: &Path, file: &PackFile, to: &Path) -> Result<()> {
    let src = dir.join(&file.path);
    let mut from = std::fs::File::open(&src).map_err(io_at(&src))?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    }
    let mut out = std::fs::File::create(to).map_err(io_at(to))?;
    let copied = copy_hashed(&mut from, &mut out, file.length, &src);
    let checked = copied.and_then(|(length, sha256)| check(file, length, &sha256));
    if let Err(e) = checked {
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    out.sync_all().map_err(io_at(to))
}

fn check(file: &PackFile, length: u64, sha256: &str) -> Result<()> {
    if length != file.length {
        return Err(Error::Config {
            path: PathBuf::from(&file.path),
            reason: format!(
                "length check failed: {length} bytes; expected {} as {INDEX} says",
                file.length
            ),
        });
    }
    if sha256 != file.sha256 {
        return Err(Error::Config {
            path: PathBuf::from(&file.path),
            reason: format!(
                "hash check failed: sha256 {sha256}; expected {} as {INDEX} says",
                file.sha256
            ),
        });
    }
    Ok(())
}

/// What an import loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub vehicles: usize,
    pub director_files: usize,
    pub image_repo_files: usize,
    /// The offline-update bundles placed, by name.
    pub bundles: Vec<String>,
    pub bytes: u64,
}

/// Load the pack in `dir` into the cache of relay `relay` (`cache_dir`'s database `db` and
/// mirror `mirror_dir`, at most `cache_max` bytes), `now_ms` as the time of use; its bundles
/// into `bundles_dir` (replacing older ones of their names). Every file of the pack is
/// checked before any takes its place: a refused pack loads nothing.
pub fn import(
    db: &Db,
    mirror_dir: &Path,
    bundles_dir: &Path,
    cache_max: u64,
    relay: &str,
    dir: &Path,
    now_ms: i64,
) -> Result<Imported> {
    let index = read_index(dir)?;
    if index.relay != relay {
        return Err(Error::Config {
            path: dir.to_owned(),
            reason: format!(
                "relay check failed: the pack is for relay {:?}; expected one for this relay, {relay:?}",
                index.relay
            ),
        });
    }
    let immutable = |key: &str| {
        key.starts_with("targets/")
            || crate::mirror::immutable_metadata(key.rsplit('/').next().unwrap_or_default())
    };
    let cached: u64 = index
        .image_repo
        .iter()
        .filter(|f| mirror_key(&f.path).is_some_and(immutable))
        .map(|f| f.length)
        .sum();
    if cached > cache_max {
        return Err(Error::TooLarge {
            what: format!(
                "the pack's targets and versioned metadata in {}",
                dir.display()
            ),
            len: cached,
            max: cache_max,
        });
    }
    // First every file is copied to a name nothing reads and checked; only once all of them
    // checked does anything take its place (a refused pack changes nothing: `Staged`'s drop
    // removes what it copied).
    let mut staged = Staged::default();
    // Numbered copies in a directory of their own (no mirror key starts with a dot), so no
    // two files of the pack can share a staging name.
    let incoming = mirror_dir.join(".pack-import");
    if incoming.exists() {
        std::fs::remove_dir_all(&incoming).map_err(io_at(&incoming))?;
    }
    staged.dirs.push(incoming.clone());
    let mut mirror_files = Vec::new();
    for (n, f) in index.image_repo.iter().enumerate() {
        let key = mirror_key(&f.path).unwrap_or_default();
        let tmp = incoming.join(n.to_string());
        stage(dir, f, &tmp)?;
        mirror_files.push((key, f.length, tmp, mirror_dir.join(key)));
    }
    let mut vehicles = Vec::new();
    for v in &index.vehicles {
        let mut files = Vec::new();
        for f in &v.files {
            let src = dir.join(&f.path);
            let len = std::fs::metadata(&src).map_err(io_at(&src))?.len();
            if len > crate::device::MAX_METADATA_BYTES {
                return Err(Error::TooLarge {
                    what: f.path.clone(),
                    len,
                    max: crate::device::MAX_METADATA_BYTES,
                });
            }
            if len != f.length {
                check(f, len, "")?;
            }
            let body = std::fs::read(&src).map_err(io_at(&src))?;
            check(f, body.len() as u64, &hex::encode(Sha256::digest(&body)))?;
            let name = f.path.rsplit('/').next().unwrap_or_default().to_owned();
            files.push((name, body));
        }
        vehicles.push((v, files));
    }
    let mut bundles = Vec::new();
    for b in &index.bundles {
        let staging = bundles_dir.join(format!(".{}.importing", b.name));
        staged.dirs.push(staging.clone());
        let bytes = stage_bundle(dir, b, &staging)?;
        bundles.push((b, bytes, staging));
    }
    staged.done = true;

    let mut done = Imported::default();
    for (key, length, tmp, dest) in mirror_files {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        std::fs::rename(&tmp, &dest).map_err(io_at(&dest))?;
        if immutable(key) {
            db.insert(key, length, now_ms)?;
        }
        done.image_repo_files += 1;
        done.bytes += length;
    }
    for (v, files) in vehicles {
        for (name, body) in &files {
            db.save_vehicle_file(&v.vin, name, body, now_ms)?;
            done.director_files += 1;
            done.bytes += body.len() as u64;
        }
        if let Some(h) = &v.device_token_sha256 {
            db.pack_token(&v.vin, &hex::decode(h).unwrap_or_default())?;
        }
        done.vehicles += 1;
    }
    for (b, bytes, staging) in bundles {
        let dest = bundles_dir.join(&b.name);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(io_at(&dest))?;
        }
        std::fs::rename(&staging, &dest).map_err(io_at(&dest))?;
        tracing::info!(bundle = %b.name, dir = %dest.display(), "offline-update bundle placed");
        done.bytes += bytes;
        done.bundles.push(b.name.clone());
    }
    let _ = std::fs::remove_dir(&incoming);
    evict(db, mirror_dir, cache_max)?;
    Ok(done)
}

/// Where an import copied what it has not placed yet; removed on drop unless `done`.
#[derive(Default)]
struct Staged {
    dirs: Vec<PathBuf>,
    done: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Copy bundle `b` of the pack in `dir` into `staging`, every file checked, with an empty
/// `receipts/` for the vehicles' receipts. Returns the bytes copied.
fn stage_bundle(dir: &Path, b: &PackBundle, staging: &Path) -> Result<u64> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(io_at(staging))?;
    }
    let prefix = format!("{BUNDLES_DIR}/{}/", b.name);
    let mut bytes = 0;
    for f in &b.files {
        let rel = f.path.strip_prefix(&prefix).unwrap_or_default();
        stage(dir, f, &staging.join(rel))?;
        bytes += f.length;
    }
    let receipts = staging.join("receipts");
    std::fs::create_dir_all(&receipts).map_err(io_at(&receipts))?;
    Ok(bytes)
}

/// Drop the least recently used files until the cache fits `cache_max`; what was just
/// imported is the most recently used and, fitting as checked, stays.
fn evict(db: &Db, mirror_dir: &Path, cache_max: u64) -> Result<()> {
    while db.cache_size()?.0 > cache_max {
        let Some((key, _)) = db.lru(1)?.into_iter().next() else {
            return Ok(());
        };
        let path = mirror_dir.join(&key);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
        db.remove(&key)?;
        tracing::info!(path = %key, "evicted (cache_max) by an import");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn pack(dir: &Path, relay: &str, target: &[u8]) -> PathBuf {
        let w = PackWriter::create(dir).expect("create");
        let t = w
            .write(
                "image-repo/targets/apps/abc.app.bin",
                &mut &target[..],
                1 << 20,
            )
            .expect("target");
        let ts = w
            .write(
                "image-repo/metadata/timestamp.json",
                &mut &b"{\"t\":1}"[..],
                1 << 20,
            )
            .expect("timestamp");
        let d = w
            .write("director/V1/targets.json", &mut &b"{\"d\":1}"[..], 1 << 20)
            .expect("director");
        let b = w
            .write(
                "bundles/workshop/.well-known/images/abc.bin",
                &mut &b"image"[..],
                1 << 20,
            )
            .expect("bundle");
        w.finish(&PackIndex {
            format: FORMAT.into(),
            relay: relay.into(),
            created_at: "2026-12-07T00:00:00Z".into(),
            vehicles: vec![PackVehicle {
                vin: "V1".into(),
                device_token_sha256: Some(hex::encode(Sha256::digest(SECRET.as_bytes()))),
                files: vec![d],
            }],
            image_repo: vec![t, ts],
            bundles: vec![PackBundle {
                name: "workshop".into(),
                files: vec![b],
            }],
        })
        .expect("finish")
    }

    #[test]
    fn an_import_fills_the_cache_and_a_changed_or_foreign_pack_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = pack(&tmp.path().join("p"), "yard-7", b"target bytes");
        let db = Db::open(&tmp.path().join("cache")).expect("db");
        let mirror = tmp.path().join("cache/mirror");
        let bundles = tmp.path().join("cache/bundles");
        let import = |max, relay, at| import(&db, &mirror, &bundles, max, relay, &dir, at);

        let e = import(1 << 20, "other", 1).expect_err("foreign");
        assert!(e.to_string().contains("relay check failed"), "{e}");
        let e = import(4, "yard-7", 1).expect_err("too large");
        assert!(e.to_string().contains("cache check failed"), "{e}");

        let done = import(1 << 20, "yard-7", 1).expect("import");
        assert_eq!(
            (done.vehicles, done.director_files, done.image_repo_files),
            (1, 1, 2)
        );
        // The bundle, whole and named, with room for the vehicles' receipts.
        assert_eq!(done.bundles, ["workshop"]);
        let placed = bundles.join("workshop");
        assert_eq!(
            std::fs::read(placed.join(".well-known/images/abc.bin")).expect("bundle file"),
            b"image"
        );
        assert!(placed.join("receipts").is_dir());
        assert_eq!(
            std::fs::read(mirror.join("targets/apps/abc.app.bin")).expect("cached"),
            b"target bytes"
        );
        assert!(db.touch("targets/apps/abc.app.bin", 2).expect("touch"));
        assert!(!db
            .touch("metadata/timestamp.json", 2)
            .expect("unversioned: a last copy"));
        assert!(mirror.join("metadata/timestamp.json").is_file());
        assert_eq!(
            db.vehicle_file("V1", "targets.json")
                .expect("file")
                .as_deref(),
            Some(&b"{\"d\":1}"[..])
        );
        assert!(db
            .token_confirmed("V1", &format!("V1.{SECRET}"))
            .expect("token"));
        assert!(db.token_confirmed("V1", SECRET).expect("bare token"));
        assert!(!db.token_confirmed("V1", "V1.other").expect("wrong"));
        let other = format!("V2.{SECRET}");
        assert!(!db.token_confirmed("V1", &other).expect("another vehicle's"));
        assert!(!db.token_confirmed("V2", &other).expect("not packed"));

        std::fs::write(
            dir.join("image-repo/targets/apps/abc.app.bin"),
            b"target bytez",
        )
        .expect("tamper");
        let e = import(1 << 20, "yard-7", 3).expect_err("tampered");
        assert!(e.to_string().contains("hash check failed"), "{e}");
    }

    #[test]
    fn a_changed_bundle_file_is_refused_and_the_placed_bundle_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = pack(&tmp.path().join("p"), "yard-7", b"target bytes");
        let db = Db::open(&tmp.path().join("cache")).expect("db");
        let mirror = tmp.path().join("cache/mirror");
        let bundles = tmp.path().join("cache/bundles");
        import(&db, &mirror, &bundles, 1 << 20, "yard-7", &dir, 1).expect("import");
        let image = "bundles/workshop/.well-known/images/abc.bin";
        std::fs::write(dir.join(image), b"imagE").expect("tamper");
        let e = import(&db, &mirror, &bundles, 1 << 20, "yard-7", &dir, 2).expect_err("tampered");
        assert!(e.to_string().contains("hash check failed"), "{e}");
        assert_eq!(
            std::fs::read(bundles.join("workshop/.well-known/images/abc.bin")).expect("kept"),
            b"image"
        );
        assert!(!bundles.join(".workshop.importing").exists());
    }

    #[test]
    fn a_pack_refused_at_its_last_file_loads_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = pack(&tmp.path().join("p"), "yard-7", b"target bytes");
        let db = Db::open(&tmp.path().join("cache")).expect("db");
        let mirror = tmp.path().join("cache/mirror");
        let bundles = tmp.path().join("cache/bundles");
        // The bundle is checked last: every other file of the pack is good.
        let image = "bundles/workshop/.well-known/images/abc.bin";
        std::fs::write(dir.join(image), b"imagE").expect("tamper");
        let e = import(&db, &mirror, &bundles, 1 << 20, "yard-7", &dir, 1).expect_err("tampered");
        assert!(e.to_string().contains("hash check failed"), "{e}");
        let mut left = Vec::new();
        for root in [&mirror, &bundles] {
            let mut todo = vec![root.clone()];
            while let Some(d) = todo.pop() {
                for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    if entry.path().is_dir() {
                        todo.push(entry.path());
                    } else {
                        left.push(entry.path());
                    }
                }
            }
        }
        assert!(left.is_empty(), "nothing placed or left over: {left:?}");
        assert_eq!(db.vehicle_file("V1", "targets.json").expect("db"), None);
        assert_eq!(db.cache_size().expect("db").0, 0);
    }

    #[test]
    fn bundle_paths_stay_inside_their_bundle() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = pack(&tmp.path().join("p"), "yard-7", b"t");
        let mut index = read_index(&dir).expect("index");
        for bad in [
            "bundles/workshop/../x",
            "bundles/other/x",
            "bundles/workshop/",
            "bundles/workshop//x",
        ] {
            index.bundles[0].files[0].path = bad.into();
            std::fs::write(dir.join(INDEX), serde_json::to_vec(&index).expect("json"))
                .expect("write");
            let e = read_index(&dir).expect_err(bad);
            assert!(
                e.to_string().contains("is not a file of bundles/workshop/"),
                "{e}"
            );
        }
    }

    #[test]
    fn paths_stay_inside_the_mirror() {
        assert_eq!(
            mirror_key("image-repo/targets/a/b.bin"),
            Some("targets/a/b.bin")
        );
        assert_eq!(
            mirror_key("image-repo/metadata/1.root.json"),
            Some("metadata/1.root.json")
        );
        for bad in [
            "image-repo/targets/../x",
            "image-repo/other/x",
            "targets/x",
            "image-repo/targets//x",
            "image-repo/targets/",
        ] {
            assert_eq!(mirror_key(bad), None, "{bad}");
        }
    }
}
