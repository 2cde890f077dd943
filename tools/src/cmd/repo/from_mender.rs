//! `ferry repo add-target --from-mender`: a Mender artifact (format version 3) as a target.
//! The artifact file itself is the target; its headers give the custom metadata, mapped as
//! Mender itself reads them:
//! - `artifact_depends.device_type` → `hardwareIds` (unless `--hardware-id` is given);
//! - the payload type → `domain` (`rootfs-image` → `os`, a module type → that module);
//! - type-info `artifact_provides` / `artifact_depends` / `clears_artifact_provides` →
//!   `provides` / `depends` / `clearsProvides`, verbatim;
//! - `artifact_name` and `artifact_group` → the provides of those names (Mender's
//!   `artifact_name` and `artifact_group` provides), and `--artifact-name-depends` /
//!   `--depends-groups` → the depends `artifact_name` / `artifact_group` (any of);
//!   an artifact without a group leaves the device's `artifact_group` as it was, as Debian's
//!   Mender 3.4 does (checked by hand with `mender install` and `show-provides`);
//! - `meta-data` → `metaData` (the module's `header/meta-data`);
//! - `mender` records that the target is an artifact, for the ECU to unpack.

use crate::error::{Error, Result};
use ferry_core::metadata::uptane::{DependsValue, Domain};
use ferry_secondary::mender::{self, Artifact, DiscardPayload};
use std::collections::BTreeMap;
use std::path::Path;

/// The custom field marking a target as a Mender artifact (see ferry_secondary::mender).
pub use ferry_secondary::mender::CUSTOM_FIELD;

/// What `--from-mender` puts into the target's options.
#[derive(Debug)]
pub struct FromMender {
    pub hardware_ids: Vec<String>,
    pub domain: Domain,
    pub software_name: String,
    pub provides: BTreeMap<String, String>,
    pub depends: BTreeMap<String, DependsValue>,
    pub clears: Option<Vec<String>>,
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Read and check the artifact at `path` (every part against its manifest).
pub fn read(path: &Path) -> Result<Artifact> {
    let file = std::fs::File::open(path).map_err(crate::error::io_at(path))?;
    mender::read(
        std::io::BufReader::new(file),
        &mender::Limits::default(),
        &mut DiscardPayload,
    )
    .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// The target options an artifact's headers give.
pub fn options(artifact: &Artifact) -> Result<FromMender> {
    let domain = match artifact.payload_type.as_str() {
        "rootfs-image" => Domain::Os,
        other => match Domain::parse(other) {
            Domain::Module(m) => Domain::Module(m),
            builtin => {
                return Err(Error::Usage(format!(
                    "the artifact's payload type {other:?} names Ferry's built-in {} domain, not an update module; expected rootfs-image or an update module's type",
                    builtin.as_str()
                )))
            }
        },
    };
    let mut provides = artifact.provides.clone();
    provides.insert("artifact_name".into(), artifact.name.clone());
    // An artifact without a group leaves the device's group standing, as Mender 3.4 does.
    let clears = artifact.clears.clone();
    if let Some(group) = &artifact.group {
        provides.insert("artifact_group".into(), group.clone());
    }
    let mut depends = artifact.depends.clone();
    for (key, values) in [
        ("artifact_name", &artifact.depends_names),
        ("artifact_group", &artifact.depends_groups),
    ] {
        if let Some(values) = values.as_ref().filter(|v| !v.is_empty()) {
            depends.insert(key.into(), DependsValue::AnyOf(values.clone()));
        }
    }
    let mut extra = BTreeMap::new();
    extra.insert(
        CUSTOM_FIELD.to_owned(),
        serde_json::json!({
            "format": 3,
            "artifactName": artifact.name,
            "payloadType": artifact.payload_type,
            "files": artifact.files.iter().map(|(name, size)| serde_json::json!({"name": name, "size": size})).collect::<Vec<_>>(),
        }),
    );
    if let Some(meta) = &artifact.meta_data {
        extra.insert("metaData".into(), serde_json::Value::Object(meta.clone()));
    }
    Ok(FromMender {
        hardware_ids: artifact.device_types.clone(),
        domain,
        software_name: artifact.name.clone(),
        provides,
        depends,
        clears,
        extra,
    })
}
