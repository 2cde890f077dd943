//! The header tar: `header-info`, `headers/0000/type-info` and `headers/0000/meta-data`.

use super::manifest::Manifest;
use super::{compress, refuse, sha256, Artifact, Compression, Limits};
use crate::error::Result;
use ferry_core::metadata::uptane::DependsValue;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

/// A header file may be this large (they are small JSON documents).
const MAX_HEADER_FILE: u64 = 256 << 10;

#[derive(Debug, Deserialize)]
struct HeaderInfo {
    payloads: Vec<PayloadInfo>,
    artifact_provides: InfoProvides,
    #[serde(default)]
    artifact_depends: InfoDepends,
}

#[derive(Debug, Deserialize)]
struct PayloadInfo {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InfoProvides {
    artifact_name: String,
    #[serde(default)]
    artifact_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct InfoDepends {
    #[serde(default)]
    device_type: Vec<String>,
    #[serde(default)]
    artifact_name: Option<Vec<String>>,
    #[serde(default)]
    artifact_group: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct TypeInfo {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    artifact_provides: Option<BTreeMap<String, String>>,
    #[serde(default)]
    artifact_depends: Option<BTreeMap<String, DependsValue>>,
    #[serde(default)]
    clears_artifact_provides: Option<Vec<String>>,
}

/// The parsed headers, waiting for the payload's file list.
#[derive(Debug)]
pub(super) struct Headers {
    info: HeaderInfo,
    type_info: TypeInfo,
    payload_type: String,
    meta_data: Option<serde_json::Map<String, serde_json::Value>>,
    header_info_raw: Vec<u8>,
    type_info_raw: Vec<u8>,
    meta_data_raw: Option<Vec<u8>>,
    scripts: Vec<(String, Vec<u8>)>,
}

/// At most this many state scripts.
const MAX_SCRIPTS: usize = 64;

impl Headers {
    pub(super) fn into_artifact(self, files: Vec<(String, u64)>, signed: bool) -> Artifact {
        Artifact {
            name: self.info.artifact_provides.artifact_name,
            group: self.info.artifact_provides.artifact_group,
            device_types: self.info.artifact_depends.device_type,
            depends_names: self.info.artifact_depends.artifact_name,
            depends_groups: self.info.artifact_depends.artifact_group,
            payload_type: self.payload_type,
            provides: self.type_info.artifact_provides.unwrap_or_default(),
            depends: self.type_info.artifact_depends.unwrap_or_default(),
            clears: self.type_info.clears_artifact_provides,
            meta_data: self.meta_data,
            header_info_raw: self.header_info_raw,
            type_info_raw: self.type_info_raw,
            meta_data_raw: self.meta_data_raw,
            scripts: self.scripts,
            files,
            signed,
        }
    }
}

fn json<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| refuse("artifact header", format!("{what}: {e}")))
}

/// Read the header part `name` (its stored bytes hashed against the manifest) and parse it.
pub(super) fn read(
    entry: &mut impl Read,
    size: u64,
    compression: Compression,
    name: &str,
    manifest: &Manifest,
    limits: &Limits,
) -> Result<Headers> {
    if size > limits.max_header_bytes {
        return Err(refuse(
            "artifact header",
            format!(
                "{name} is {size} bytes; expected at most {}",
                limits.max_header_bytes
            ),
        ));
    }
    let mut stored = Vec::with_capacity(size as usize);
    entry
        .take(limits.max_header_bytes + 1)
        .read_to_end(&mut stored)
        .map_err(|e| refuse("artifact tar", format!("reading {name}: {e}")))?;
    manifest.check(name, Some(&sha256(&stored)))?;
    let mut tar_bytes = Vec::new();
    compress::decoder(compression, stored.as_slice())?
        .take(limits.max_header_bytes + 1)
        .read_to_end(&mut tar_bytes)
        .map_err(|e| refuse("artifact header", format!("decompressing {name}: {e}")))?;
    if tar_bytes.len() as u64 > limits.max_header_bytes {
        return Err(refuse(
            "artifact header",
            format!(
                "{name} unpacks to more than {} bytes",
                limits.max_header_bytes
            ),
        ));
    }
    let mut header_info_raw = None;
    let mut type_info_raw = None;
    let mut meta_data_raw = None;
    let mut scripts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| refuse("artifact header", e.to_string()))?;
    for file in entries {
        let mut file = file.map_err(|e| refuse("artifact header", e.to_string()))?;
        let path = String::from_utf8(file.path_bytes().into_owned())
            .map_err(|_| refuse("artifact header", "an entry name is not UTF-8"))?;
        let kind = file.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if let Some(name) = path.strip_prefix("scripts/") {
            check_script_name(name)?;
            if scripts.len() >= MAX_SCRIPTS {
                return Err(refuse(
                    "artifact state scripts",
                    format!("more than {MAX_SCRIPTS} scripts"),
                ));
            }
            if scripts.iter().any(|(n, _)| n == name) {
                return Err(refuse(
                    "artifact state scripts",
                    format!("{path} appears twice"),
                ));
            }
            let mut bytes = Vec::new();
            (&mut file)
                .take(MAX_HEADER_FILE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| refuse("artifact header", format!("reading {path}: {e}")))?;
            if bytes.len() as u64 > MAX_HEADER_FILE {
                return Err(refuse(
                    "artifact state scripts",
                    format!("{path} is over {MAX_HEADER_FILE} bytes"),
                ));
            }
            scripts.push((name.to_owned(), bytes));
            continue;
        }
        let slot = match path.as_str() {
            "header-info" => &mut header_info_raw,
            "headers/0000/type-info" => &mut type_info_raw,
            "headers/0000/meta-data" => &mut meta_data_raw,
            other if other.starts_with("headers/") => {
                return Err(refuse(
                    "payload count",
                    format!("the header carries {other}; Ferry installs artifacts with exactly one payload"),
                ))
            }
            other => {
                return Err(refuse(
                    "artifact header",
                    format!("unexpected entry {other:?}; expected header-info, headers/0000/type-info, headers/0000/meta-data"),
                ))
            }
        };
        if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
            return Err(refuse(
                "artifact header",
                format!("{path} is not a regular file"),
            ));
        }
        if slot.is_some() {
            return Err(refuse("artifact header", format!("{path} appears twice")));
        }
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_HEADER_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| refuse("artifact header", format!("reading {path}: {e}")))?;
        if bytes.len() as u64 > MAX_HEADER_FILE {
            return Err(refuse(
                "artifact header",
                format!("{path} is over {MAX_HEADER_FILE} bytes"),
            ));
        }
        *slot = Some(bytes);
    }
    let header_info_raw =
        header_info_raw.ok_or_else(|| refuse("artifact header", "no header-info"))?;
    let info: HeaderInfo = json(&header_info_raw, "header-info")?;
    if info.payloads.len() != 1 {
        return Err(refuse(
            "payload count",
            format!(
                "header-info lists {} payloads; Ferry installs artifacts with exactly one",
                info.payloads.len()
            ),
        ));
    }
    let type_info_raw =
        type_info_raw.ok_or_else(|| refuse("artifact header", "no headers/0000/type-info"))?;
    let type_info: TypeInfo = json(&type_info_raw, "headers/0000/type-info")?;
    let payload_type = match (&info.payloads[0].kind, &type_info.kind) {
        (Some(a), Some(b)) if a == b && !a.is_empty() => a.clone(),
        // `mender-artifact write rootfs-image` leaves type-info's type empty; header-info
        // names it.
        (Some(a), Some(b)) if a == "rootfs-image" && b.is_empty() => a.clone(),
        (Some(a), Some(b)) if a != b => {
            return Err(refuse(
                "artifact header",
                format!("header-info names payload type {a:?}, type-info {b:?}"),
            ))
        }
        _ => {
            return Err(refuse(
                "payload count",
                "the payload has no type (an empty or bootstrap artifact); Ferry installs artifacts with exactly one payload",
            ))
        }
    };
    if info.artifact_provides.artifact_name.is_empty() {
        return Err(refuse("artifact header", "artifact_name is empty"));
    }
    let meta_data = match &meta_data_raw {
        None => None,
        Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => None,
        Some(bytes) => Some(json(bytes, "headers/0000/meta-data")?),
    };
    Ok(Headers {
        info,
        type_info,
        payload_type,
        meta_data,
        header_info_raw,
        type_info_raw,
        meta_data_raw,
        scripts,
    })
}

/// State scripts an artifact may carry: `<State>_<Enter|Leave|Error>_<NN>[_<text>]`, for the
/// Artifact* states (Mender's Download, Idle, Sync scripts live on the device, not in
/// artifacts).
pub const SCRIPT_STATES: [&str; 6] = [
    "ArtifactInstall",
    "ArtifactReboot",
    "ArtifactCommit",
    "ArtifactRollback",
    "ArtifactRollbackReboot",
    "ArtifactFailure",
];

fn check_script_name(name: &str) -> Result<()> {
    let bad = || {
        refuse(
            "artifact state scripts",
            format!(
                "{name:?}; expected <State>_<Enter|Leave|Error>_<NN>[_<text>] for one of {}",
                SCRIPT_STATES.join(", ")
            ),
        )
    };
    let mut parts = name.splitn(4, '_');
    let (Some(state), Some(action), Some(number)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let text_ok = parts.next().is_none_or(|t| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    });
    let ok = SCRIPT_STATES.contains(&state)
        && ["Enter", "Leave", "Error"].contains(&action)
        && number.len() == 2
        && number.bytes().all(|b| b.is_ascii_digit())
        && text_ok;
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}
