//! Writing a bundle in the PURE-2 layout (uptane/pures pure2.md "Required files"):
//!
//! ```text
//! bundle.json                                  index: every file with its length and sha256
//! .well-known/images/<target name>             the images
//! .well-known/metadata/director/N.root.json    every director root, 1..latest
//! .well-known/metadata/director/offline-update-snapshot.json
//! .well-known/metadata/director/NAME.json      this bundle's offline-update targets
//! .well-known/metadata/image-repo/N.root.json  every Image repository root, 1..latest
//! .well-known/metadata/image-repo/snapshot.json, targets.json, ROLE.json (the roles on the
//!                                              images' delegation paths)
//! receipts/                                    where vehicles write their signed receipts
//! ```
//!
//! Nothing here is trusted by a vehicle for being on the stick: it verifies every file. The
//! Image repository's metadata is verified here too (from `--image-root`), so a bundle that
//! would be refused for a bad image or metadata is refused before it is written.

use crate::error::{io_at, Error, Result};
use ferry_core::{Clock, SystemClock};
use ferry_primary::{FetchPolicy, HttpFetcher, MetadataStore, Updater};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub files: usize,
    pub bytes: u64,
}

/// `out` is a new or empty directory, or a `.tar` that does not exist yet.
pub fn check_out(out: &Path) -> Result<()> {
    if is_tar(out) {
        if out.exists() {
            return Err(Error::Usage(format!(
                "{} exists; a bundle is never written over another",
                out.display()
            )));
        }
        return Ok(());
    }
    let taken = std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some());
    if taken {
        return Err(Error::Usage(format!(
            "{} is not empty; expected a new or empty directory (or FILE.tar)",
            out.display()
        )));
    }
    Ok(())
}

fn is_tar(out: &Path) -> bool {
    out.extension().is_some_and(|e| e == "tar")
}

/// A bundle being assembled in a temporary directory beside `out`: nothing appears at `out`
/// until [`Staged::finish`].
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::TempDir,
}

impl Staged {
    fn dir(&self) -> &Path {
        self.tmp.path()
    }
}

/// First half, before the Director signs anything: the Image repository's metadata, verified
/// from `image_root`, and the images `names`, verified as downloaded. A bundle that would be
/// refused for its images is refused here, with no new bundle version on the Director.
pub fn stage_images(
    out: &Path,
    image_repo: &str,
    image_root: &Path,
    names: &[String],
) -> Result<Staged> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".ferry-bundle-")
        .tempdir_in(parent)
        .map_err(io_at(parent))?;
    let staged = Staged { tmp };
    let well_known = staged.dir().join(".well-known");
    let image_md = well_known.join("metadata/image-repo");
    let images = well_known.join("images");
    for d in [&image_md, &images, &staged.dir().join("receipts")] {
        std::fs::create_dir_all(d).map_err(io_at(d))?;
    }
    image_repository(image_repo, image_root, &image_md, &images, names)?;
    Ok(staged)
}

/// Second half: the Director's signed bundle `signed` (its `GET /bundles/NAME` answer), the
/// index, then the whole bundle moved to `out` (a directory, or written as `out` when a .tar).
pub fn finish(staged: Staged, signed: &Value, name: &str, out: &Path) -> Result<Written> {
    let dir = staged.dir().to_owned();
    let director = dir.join(".well-known/metadata/director");
    std::fs::create_dir_all(&director).map_err(io_at(&director))?;
    for (i, root) in signed["roots"].as_array().into_iter().flatten().enumerate() {
        write_text(&director.join(format!("{}.root.json", i + 1)), root)?;
    }
    write_text(
        &director.join("offline-update-snapshot.json"),
        &signed["snapshot"],
    )?;
    write_text(&director.join(format!("{name}.json")), &signed["targets"])?;
    let written = index(&dir, name)?;
    if is_tar(out) {
        write_tar(&dir, out)?;
    } else {
        // `out` is absent or empty (check_out): the staged tree takes its place whole.
        if out.exists() {
            std::fs::remove_dir(out).map_err(io_at(out))?;
        }
        std::fs::rename(&dir, out).map_err(io_at(out))?;
    }
    Ok(written)
}

fn write_text(path: &Path, text: &Value) -> Result<()> {
    let text = text
        .as_str()
        .ok_or_else(|| Error::Check(format!("{}: the Director sent no text", path.display())))?;
    std::fs::write(path, text).map_err(io_at(path))
}

/// The Image repository's roots (1..latest), snapshot and the targets roles on the images'
/// paths, verified from `image_root`, and the images themselves, verified as downloaded.
fn image_repository(
    url: &str,
    image_root: &Path,
    md: &Path,
    images: &Path,
    names: &[String],
) -> Result<()> {
    let base = url.trim_end_matches('/');
    let root = std::fs::read(image_root).map_err(io_at(image_root))?;
    let version = serde_json::from_slice::<Value>(&root)
        .ok()
        .and_then(|v| v["signed"]["version"].as_u64())
        .ok_or_else(|| Error::Usage(format!("{}: not a TUF root", image_root.display())))?;
    let fetcher = HttpFetcher::new(FetchPolicy::default())?;
    // Roots before the trusted one travel too: a vehicle may trust an older one.
    for v in 1..version {
        let bytes = ferry_primary::Fetcher::fetch_bytes(
            &fetcher,
            &format!("{base}/metadata/{v}.root.json"),
            512_000,
        )?;
        std::fs::write(md.join(format!("{v}.root.json")), bytes).map_err(io_at(md))?;
    }
    std::fs::write(md.join(format!("{version}.root.json")), &root).map_err(io_at(md))?;
    let store = MetadataStore::new(md);
    ferry_primary::init_trusted_root(&store, &root)?;
    let mut updater = Updater::new(
        fetcher,
        store,
        &format!("{base}/metadata"),
        SystemClock.now(),
    )
    .keeping_root_chain();
    updater.refresh()?;
    let downloads = tempfile::tempdir_in(images).map_err(io_at(images))?;
    for name in names {
        let found = updater.target_info(name)?;
        // An OSTree pull target has no file to carry: the ECU pulls its commit over the
        // network, which a vehicle updated offline does not have.
        if ferry_core::metadata::received::ostree_pull_commit(name, &found.target)?.is_some() {
            return Err(Error::Usage(format!(
                "target {name} is an OSTree pull target (custom.ostree.delivery \"pull\"): it has no file to carry offline; publish the commit as a static delta (ferry repo add-target --ostree-commit) for offline bundles"
            )));
        }
        let path =
            updater.download_target(&found, name, &format!("{base}/targets"), downloads.path())?;
        let dest = images.join(name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        std::fs::rename(&path, &dest).map_err(io_at(&dest))?;
    }
    // Not part of the layout: the walk's bookkeeping.
    for extra in ["root.json", "timestamp.json"] {
        let _ = std::fs::remove_file(md.join(extra));
    }
    Ok(())
}

/// `bundle.json`: every file with its length and sha256 (an index for people and tools; the
/// vehicle trusts only the signed metadata).
fn index(dir: &Path, name: &str) -> Result<Written> {
    let mut files = serde_json::Map::new();
    let mut total = 0u64;
    for path in walk(dir)? {
        let rel = path
            .strip_prefix(dir)
            .map_err(|_| Error::Check("bundle file outside the bundle".into()))?
            .to_string_lossy()
            .into_owned();
        let (length, sha256) = hash_file(&path)?;
        total += length;
        files.insert(
            rel,
            serde_json::json!({ "length": length, "sha256": sha256 }),
        );
    }
    let count = files.len();
    let index = serde_json::json!({
        "ferry_bundle": 1,
        "name": name,
        "created": SystemClock.now().to_rfc3339(),
        "files": files,
    });
    let path = dir.join("bundle.json");
    let text = serde_json::to_vec_pretty(&index).map_err(|e| Error::Check(e.to_string()))?;
    std::fs::write(&path, text).map_err(io_at(&path))?;
    Ok(Written {
        files: count,
        bytes: total,
    })
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).map_err(io_at(&d))? {
            let entry = entry.map_err(io_at(&d))?;
            let kind = entry.file_type().map_err(io_at(entry.path()))?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_at(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        length += n as u64;
    }
    Ok((length, hex::encode(hasher.finalize())))
}

fn write_tar(dir: &Path, out: &Path) -> Result<()> {
    let part = out.with_extension("tar.part");
    let file = std::fs::File::create(&part).map_err(io_at(&part))?;
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    for path in walk(dir)? {
        let rel = path
            .strip_prefix(dir)
            .map_err(|_| Error::Check("bundle file outside the bundle".into()))?;
        builder
            .append_path_with_name(&path, rel)
            .map_err(io_at(&path))?;
    }
    builder
        .append_dir("receipts", dir.join("receipts"))
        .map_err(io_at(dir))?;
    let file = builder.into_inner().map_err(io_at(&part))?;
    file.sync_all().map_err(io_at(&part))?;
    std::fs::rename(&part, out).map_err(io_at(out))
}
