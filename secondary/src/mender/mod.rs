//! Reading a Mender artifact (format version 3), as `mender-artifact write` makes it: an
//! outer tar of `version`, `manifest` (sha256 of every part), optionally `manifest.sig`,
//! `header.tar[.gz|.xz|.zst]` and `data/0000.tar[.gz|.xz|.zst]`, in that order.
//!
//! One reader serves both ends: `ferry repo add-target --from-mender` takes the target's
//! custom metadata from the headers (payload bytes are hashed and dropped), and the module
//! installer of a Secondary unpacks the payload files as the artifact streams past
//! ([`PayloadSink`]). Every part is checked against the manifest: `version` and the header tar
//! as stored, each payload file by its content (`data/0000/<file>`), and nothing may be
//! missing from it or extra. The artifact as a whole was already checked against its signed
//! TUF hashes on the ECU, so the manifest check is a consistency check of the format, not a
//! trust decision; `manifest.sig` (Mender's own signature) is not checked for that reason.
//!
//! What Ferry cannot honour is refused by name: more than one payload, augmented headers
//! (`manifest-augment`, `header-augment.tar*`), state scripts for other than the Artifact*
//! states, an empty (bootstrap) payload, other format versions. Sizes are bounded ([`Limits`]) and
//! nothing here panics on bad input.

mod compress;
mod header;

pub use header::SCRIPT_STATES;
mod manifest;
mod payload;

use crate::error::{Error, Result};
use ferry_core::metadata::uptane::DependsValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

pub use payload::{DiscardPayload, PayloadSink};

/// The target custom field that marks a target as a Mender artifact, for the ECU to unpack:
/// `{"format": 3, "artifactName": …, "payloadType": …, "files": [{"name", "size"}]}`.
pub const CUSTOM_FIELD: &str = "mender";

/// Whether a target's custom metadata marks it as a Mender artifact ([`CUSTOM_FIELD`]).
pub fn is_artifact(custom: &ferry_core::metadata::uptane::ImageCustom) -> bool {
    custom.extra.contains_key(CUSTOM_FIELD)
}

/// The target custom field asking the module installer to unpack a plain target, a tar, into
/// the module's `files/` (several files per target): `"moduleFiles": "tar"`.
pub const FILES_FIELD: &str = "moduleFiles";

/// Caps on what an artifact may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Payload files in the one payload.
    pub max_files: usize,
    /// Their total size, uncompressed (what lands on disk).
    pub max_payload_bytes: u64,
    /// The header tar, compressed and uncompressed (it is read into memory).
    pub max_header_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: 4096,
            max_payload_bytes: 64 << 30,
            max_header_bytes: 1 << 20,
        }
    }
}

/// What the headers of an artifact say, and its payload files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `artifact_provides.artifact_name` of header-info.
    pub name: String,
    /// `artifact_provides.artifact_group` of header-info, if any.
    pub group: Option<String>,
    /// `artifact_depends.device_type` of header-info.
    pub device_types: Vec<String>,
    /// `artifact_depends.artifact_name` of header-info (`--artifact-name-depends`).
    pub depends_names: Option<Vec<String>>,
    /// `artifact_depends.artifact_group` of header-info (`--depends-groups`).
    pub depends_groups: Option<Vec<String>>,
    /// The payload's type (`rootfs-image`, `single-file`, ...).
    pub payload_type: String,
    /// type-info `artifact_provides`, verbatim.
    pub provides: BTreeMap<String, String>,
    /// type-info `artifact_depends`, verbatim.
    pub depends: BTreeMap<String, DependsValue>,
    /// type-info `clears_artifact_provides`, verbatim (absent in older artifacts).
    pub clears: Option<Vec<String>>,
    /// The payload's meta-data header (a JSON object), if any.
    pub meta_data: Option<serde_json::Map<String, serde_json::Value>>,
    /// The header files as the artifact carries them, for a module's `header/` directory.
    pub header_info_raw: Vec<u8>,
    pub type_info_raw: Vec<u8>,
    pub meta_data_raw: Option<Vec<u8>>,
    /// Artifact state scripts (`ArtifactInstall_Enter_00`, ...): name and content.
    pub scripts: Vec<(String, Vec<u8>)>,
    /// The payload files in artifact order: name and size.
    pub files: Vec<(String, u64)>,
    /// Whether it carried `manifest.sig` (not checked: see the module docs).
    pub signed: bool,
}

pub(crate) fn refuse(check: &'static str, detail: impl Into<String>) -> Error {
    Error::MenderArtifact {
        check,
        detail: detail.into(),
    }
}

/// Which compression a part's name ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// `header.tar.gz` → Some(Gzip) for `base` = "header".
fn part_compression(name: &str, base: &str) -> Option<Compression> {
    match name.strip_prefix(base)? {
        ".tar" => Some(Compression::None),
        ".tar.gz" => Some(Compression::Gzip),
        ".tar.xz" => Some(Compression::Xz),
        ".tar.zst" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Small outer parts are read whole, up to this.
const MAX_SMALL_PART: u64 = 64 << 10;

fn read_small(entry: &mut impl Read, size: u64, what: &'static str) -> Result<Vec<u8>> {
    if size > MAX_SMALL_PART {
        return Err(refuse(
            "part size",
            format!("{what} is {size} bytes; expected at most {MAX_SMALL_PART}"),
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .take(MAX_SMALL_PART + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse("artifact tar", format!("reading {what}: {e}")))?;
    Ok(bytes)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Read the artifact from `input`, checking it as described in the module docs; the payload
/// files go to `sink` as they stream past.
pub fn read(input: impl Read, limits: &Limits, sink: &mut dyn PayloadSink) -> Result<Artifact> {
    read_parts(input, limits, Some(sink))
}

/// Read the artifact's headers only (`files` is empty): its `version`, `manifest` and header
/// part are checked; the payload is neither read nor checked.
pub fn read_headers(input: impl Read, limits: &Limits) -> Result<Artifact> {
    read_parts(input, limits, None)
}

/// The files of a plain tar (a module target's several files, `moduleFiles: "tar"`): regular
/// files with plain names (a leading `./` is allowed), each to `sink`.
pub fn read_plain_tar(
    input: impl Read,
    limits: &Limits,
    sink: &mut dyn PayloadSink,
) -> Result<Vec<(String, u64)>> {
    payload::files(input, payload::Names::Plain, limits, sink, &mut |_, _| {
        Ok(())
    })
}

fn read_parts(
    input: impl Read,
    limits: &Limits,
    mut sink: Option<&mut dyn PayloadSink>,
) -> Result<Artifact> {
    let mut outer = tar::Archive::new(input);
    let entries = outer
        .entries()
        .map_err(|e| refuse("artifact tar", e.to_string()))?;
    let mut version_seen = false;
    let mut manifest: Option<manifest::Manifest> = None;
    let mut headers: Option<header::Headers> = None;
    let mut files: Option<Vec<(String, u64)>> = None;
    let mut signed = false;
    // The hash of `version`, checked once the manifest has been read.
    let mut pending_version: Option<[u8; 32]> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| refuse("artifact tar", e.to_string()))?;
        let name = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| refuse("artifact tar", "an entry name is not UTF-8"))?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            return Err(refuse(
                "artifact tar",
                format!("entry {name:?} is not a regular file"),
            ));
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| refuse("artifact tar", format!("entry {name:?}: {e}")))?;
        if name.starts_with("manifest-augment") || name.starts_with("header-augment") {
            return Err(refuse(
                "augmented header",
                format!("the artifact carries {name}; Ferry does not install artifacts with augmented headers (sign the whole artifact instead)"),
            ));
        }
        match name.as_str() {
            "version" => {
                if version_seen || manifest.is_some() {
                    return Err(refuse("part order", "version must come first, once"));
                }
                let bytes = read_small(&mut entry, size, "version")?;
                manifest::check_version(&bytes)?;
                version_seen = true;
                pending_version = Some(sha256(&bytes));
            }
            "manifest" => {
                if !version_seen || manifest.is_some() {
                    return Err(refuse(
                        "part order",
                        "manifest must come once, right after version",
                    ));
                }
                let bytes = read_small(&mut entry, size, "manifest")?;
                let parsed = manifest::Manifest::parse(&bytes)?;
                parsed.check("version", pending_version.take().as_ref())?;
                manifest = Some(parsed);
            }
            "manifest.sig" => {
                if manifest.is_none() || headers.is_some() || signed {
                    return Err(refuse(
                        "part order",
                        "manifest.sig must come once, right after manifest",
                    ));
                }
                read_small(&mut entry, size, "manifest.sig")?;
                signed = true;
            }
            _ => {
                let Some(m) = manifest.as_ref() else {
                    return Err(refuse(
                        "part order",
                        format!("{name} comes before version and manifest"),
                    ));
                };
                if let Some(compression) = part_compression(&name, "header") {
                    if headers.is_some() {
                        return Err(refuse("part order", "a second header tar"));
                    }
                    headers = Some(header::read(
                        &mut entry,
                        size,
                        compression,
                        &name,
                        m,
                        limits,
                    )?);
                } else if let Some(compression) = part_compression(&name, "data/0000") {
                    if headers.is_none() {
                        return Err(refuse(
                            "part order",
                            format!("{name} comes before the header"),
                        ));
                    }
                    if files.is_some() {
                        return Err(refuse("payload count", "a second data/0000 part"));
                    }
                    let Some(sink) = sink.as_deref_mut() else {
                        // Headers only.
                        let h = headers
                            .take()
                            .ok_or_else(|| refuse("artifact header", "no header tar"))?;
                        return Ok(h.into_artifact(Vec::new(), signed));
                    };
                    files = Some(payload::read(&mut entry, compression, m, limits, sink)?);
                } else if name.starts_with("data/") {
                    return Err(refuse(
                        "payload count",
                        format!("the artifact carries {name}; Ferry installs artifacts with exactly one payload"),
                    ));
                } else {
                    return Err(refuse(
                        "artifact tar",
                        format!("unexpected entry {name:?}; expected version, manifest, manifest.sig, header.tar[.gz|.xz|.zst] or data/0000.tar[.gz|.xz|.zst]"),
                    ));
                }
            }
        }
    }
    let manifest = manifest.ok_or_else(|| refuse("artifact tar", "no version and manifest"))?;
    let headers = headers.ok_or_else(|| refuse("artifact tar", "no header tar"))?;
    let files = files.ok_or_else(|| {
        refuse(
            "payload count",
            "no data/0000 part; Ferry installs artifacts with exactly one payload",
        )
    })?;
    manifest.all_seen()?;
    Ok(headers.into_artifact(files, signed))
}
