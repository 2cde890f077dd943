//! Reading and checking an OCI image-layout archive (a tar of `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`). The archive as a whole already matched its signed hashes; these checks
//! make sure its inside is what the runtime will trust: every blob's bytes match its digest,
//! every descriptor's size matches its blob, every referenced blob is there, and nothing in the
//! archive could write outside the store (no links, no `..`, nothing but the three kinds of
//! entry). Sizes are bounded by the archive's length, which is the signed target length.
//!
//! New blobs go to an `incoming` directory only; nothing reaches the store until the whole
//! archive has passed (see [`super::store`]).

use crate::error::{Error, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Cap on `oci-layout`, `index.json`, and any index or manifest blob parsed as JSON: the
/// distribution spec's limit for a manifest a registry must accept.
pub const MAX_JSON: u64 = 4 << 20;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// Annotations naming the image (the OCI one, and the one containerd and Docker write).
const REF_NAMES: [&str; 2] = [
    "org.opencontainers.image.ref.name",
    "io.containerd.image.name",
];

pub(crate) fn refuse(check: &'static str, detail: impl Into<String>) -> Error {
    Error::OciArchive {
        check,
        detail: detail.into(),
    }
}

/// A blob the archive carries, by its sha256 hex.
#[derive(Debug, Clone)]
pub struct Blob {
    pub size: u64,
    /// Where its verified bytes are now: `incoming/<hex>`, or the store's copy when the store
    /// already had it (the archive's bytes were hashed and dropped).
    pub path: PathBuf,
    pub new: bool,
}

/// An archive that passed every check.
#[derive(Debug)]
pub struct CheckedArchive {
    /// sha256 hex of `index.json`: the image's identity in the store.
    pub id: String,
    pub oci_layout: Vec<u8>,
    pub index: Vec<u8>,
    /// The blobs the index references, directly or through manifests and nested indexes.
    pub blobs: BTreeMap<String, Blob>,
    /// Blobs the archive carried that nothing references (not imported).
    pub unreferenced: usize,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Debug, Deserialize)]
struct IndexJson {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct ManifestJson {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct LayoutJson {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// What an archive entry's path names.
enum Name {
    Dir,
    Layout,
    Index,
    Blob(String),
    /// `docker save` writes its legacy `manifest.json` and `repositories` beside the layout:
    /// tolerated, not imported (the layout alone describes the image).
    Ignored,
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn classify(path: &str) -> Result<Name> {
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    if path.starts_with('/')
        || parts
            .iter()
            .any(|p| *p == ".." || (p.is_empty() && !trimmed.is_empty()))
    {
        return Err(refuse(
            "entry path",
            format!(
                "{path:?} leaves the layout (path traversal); expected a relative path below it"
            ),
        ));
    }
    Ok(match parts.as_slice() {
        [""] | ["."] | ["blobs"] | ["blobs", "sha256"] => Name::Dir,
        ["oci-layout"] => Name::Layout,
        ["index.json"] => Name::Index,
        ["manifest.json"] | ["repositories"] => Name::Ignored,
        ["blobs", "sha256", hex] if is_sha256_hex(hex) => Name::Blob((*hex).to_owned()),
        ["blobs", algorithm, _] if *algorithm != "sha256" => {
            return Err(refuse(
                "blob digest algorithm",
                format!("{path:?} uses {algorithm}; expected sha256"),
            ))
        }
        _ => {
            return Err(refuse(
                "entry name",
                format!("{path:?} is not part of an OCI image layout; expected oci-layout, index.json or blobs/sha256/<64 hex digits>"),
            ))
        }
    })
}

/// Read all of `entry` (at most `cap` bytes) into memory.
fn read_capped(entry: &mut dyn Read, what: &str, cap: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse("archive read", format!("{what}: {e}")))?;
    if bytes.len() as u64 > cap {
        return Err(refuse(
            "JSON size",
            format!("{what} is longer than the {cap} bytes allowed"),
        ));
    }
    Ok(bytes)
}

/// Stream one blob entry through sha256, into `dest` when given, and compare with its name.
fn take_blob(entry: &mut dyn Read, hex: &str, size: u64, dest: Option<&Path>) -> Result<()> {
    let mut out = match dest {
        Some(path) => Some(File::create(path).map_err(|e| Error::io(path, e))?),
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| refuse("archive read", format!("blob {hex}: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
        if let (Some(file), Some(path)) = (out.as_mut(), dest) {
            file.write_all(&buf[..n]).map_err(|e| Error::io(path, e))?;
        }
    }
    if total != size {
        return Err(refuse(
            "blob length",
            format!("blob {hex}: read {total} bytes; its tar header says {size}"),
        ));
    }
    let actual = hex::encode(hasher.finalize());
    if actual != hex {
        return Err(refuse(
            "blob digest",
            format!("blobs/sha256/{hex} hashes to sha256:{actual}; expected its name"),
        ));
    }
    if let (Some(file), Some(path)) = (out, dest) {
        file.sync_all().map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Check `archive`, whose signed length is `limit`; new blobs land in `incoming` (which must
/// exist and be empty), blobs for which `stored(hex)` returns a path are only hashed.
pub fn check_archive(
    archive: &Path,
    limit: u64,
    incoming: &Path,
    stored: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<CheckedArchive> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    // The tar reader never reads past the signed length, whatever the headers claim.
    let file = file.take(limit);
    let mut tar = tar::Archive::new(BufReader::new(file));
    let entries = tar
        .entries()
        .map_err(|e| refuse("archive read", e.to_string()))?;
    let (mut layout, mut index) = (None, None);
    let mut found: BTreeMap<String, Blob> = BTreeMap::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| refuse("archive read", e.to_string()))?;
        let kind = entry.header().entry_type();
        let raw = entry
            .path()
            .map_err(|e| refuse("entry path", e.to_string()))?;
        let path = raw
            .to_str()
            .ok_or_else(|| refuse("entry path", format!("{raw:?} is not UTF-8")))?
            .to_owned();
        let size = entry.size();
        if size > limit {
            return Err(refuse(
                "entry size",
                format!("{path:?} claims {size} bytes, more than the {limit}-byte signed archive"),
            ));
        }
        match kind {
            EntryType::Regular | EntryType::Directory => {}
            // Global pax headers only carry defaults for later entries' metadata.
            EntryType::XGlobalHeader => continue,
            EntryType::Symlink | EntryType::Link => {
                return Err(refuse(
                    "entry type",
                    format!("{path:?} is a link; expected regular files and directories only"),
                ))
            }
            other => {
                return Err(refuse(
                    "entry type",
                    format!("{path:?} is of tar type {other:?}; expected regular files and directories only"),
                ))
            }
        }
        let name = classify(&path)?;
        let is_dir = kind == EntryType::Directory;
        match (name, is_dir) {
            (Name::Dir, true) | (Name::Ignored, false) => {}
            (Name::Layout, false) if layout.is_none() => {
                layout = Some(read_capped(&mut entry, "oci-layout", MAX_JSON.min(limit))?);
            }
            (Name::Index, false) if index.is_none() => {
                index = Some(read_capped(&mut entry, "index.json", MAX_JSON.min(limit))?);
            }
            (Name::Blob(hex), false) if !found.contains_key(&hex) => {
                let (path, new) = match stored(&hex) {
                    Some(path) => (path, false),
                    None => (incoming.join(&hex), true),
                };
                take_blob(&mut entry, &hex, size, new.then_some(path.as_path()))?;
                found.insert(hex, Blob { size, path, new });
            }
            (Name::Layout | Name::Index | Name::Blob(_), false) => {
                return Err(refuse(
                    "duplicate entry",
                    format!("{path:?} appears twice; expected each layout file once"),
                ))
            }
            _ => {
                return Err(refuse(
                    "entry type",
                    format!(
                        "{path:?} is a {}; expected the other",
                        if is_dir { "directory" } else { "file" }
                    ),
                ))
            }
        }
    }
    let layout = layout.ok_or_else(|| refuse("layout file", "oci-layout is missing"))?;
    let index = index.ok_or_else(|| refuse("index file", "index.json is missing"))?;
    let version = serde_json::from_slice::<LayoutJson>(&layout)
        .map_err(|e| refuse("oci-layout", e.to_string()))?
        .image_layout_version;
    if version != "1.0.0" {
        return Err(refuse(
            "oci-layout",
            format!("imageLayoutVersion is {version:?}; expected \"1.0.0\""),
        ));
    }
    let referenced = walk(&index, &found)?;
    let unreferenced = found.len() - referenced.len();
    let blobs: BTreeMap<String, Blob> = found
        .into_iter()
        .filter(|(hex, _)| referenced.contains(hex))
        .collect();
    Ok(CheckedArchive {
        id: hex::encode(Sha256::digest(&index)),
        oci_layout: layout,
        index,
        blobs,
        unreferenced,
    })
}

/// The sha256 hex a descriptor names, once its blob is present with the size it states.
fn check_descriptor(d: &Descriptor, found: &BTreeMap<String, Blob>) -> Result<String> {
    let hex = d
        .digest
        .strip_prefix("sha256:")
        .filter(|h| is_sha256_hex(h))
        .ok_or_else(|| {
            refuse(
                "descriptor digest",
                format!("{:?} is not sha256:<64 lowercase hex digits>", d.digest),
            )
        })?;
    let blob = found.get(hex).ok_or_else(|| {
        refuse(
            "referenced blob",
            format!("{} ({}) is not in the archive", d.digest, d.media_type),
        )
    })?;
    if blob.size != d.size {
        return Err(refuse(
            "descriptor size",
            format!(
                "{} is {} bytes; its descriptor says {}",
                d.digest, blob.size, d.size
            ),
        ));
    }
    Ok(hex.to_owned())
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| refuse("JSON", format!("{what}: {e}")))
}

/// Every blob reachable from `index`, each checked against its descriptor.
fn walk(index: &[u8], found: &BTreeMap<String, Blob>) -> Result<BTreeSet<String>> {
    let top: IndexJson = parse(index, "index.json")?;
    if top.schema_version != 2 || top.manifests.is_empty() {
        return Err(refuse(
            "index.json",
            "expected schemaVersion 2 and at least one manifest",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut todo = top.manifests;
    while let Some(d) = todo.pop() {
        let hex = check_descriptor(&d, found)?;
        if !seen.insert(hex.clone()) {
            continue;
        }
        let is_index = INDEX_TYPES.contains(&d.media_type.as_str());
        if !is_index && !MANIFEST_TYPES.contains(&d.media_type.as_str()) {
            continue;
        }
        let path = &found[&hex].path;
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let bytes = read_capped(&mut file, &d.digest, MAX_JSON)?;
        if is_index {
            let nested: IndexJson = parse(&bytes, &d.digest)?;
            todo.extend(nested.manifests);
        } else {
            let manifest: ManifestJson = parse(&bytes, &d.digest)?;
            if manifest.schema_version != 2 {
                return Err(refuse(
                    "manifest",
                    format!(
                        "{}: schemaVersion {}; expected 2",
                        d.digest, manifest.schema_version
                    ),
                ));
            }
            todo.push(manifest.config);
            todo.extend(manifest.layers);
        }
    }
    Ok(seen)
}

/// The image's name from `index.json`'s first manifest annotations, if it carries one.
pub fn ref_name(index: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(index).ok()?;
    let annotations = value.get("manifests")?.get(0)?.get("annotations")?;
    REF_NAMES
        .iter()
        .find_map(|k| annotations.get(*k)?.as_str().map(str::to_owned))
}
