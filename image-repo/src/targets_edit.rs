//! Adding, removing and listing targets, with Uptane custom metadata.

use crate::error::{io_at, Error, Result};
use crate::repo::Repository;
use ferry_core::metadata::received::ostree_pull_commit;
use ferry_core::metadata::uptane::{DependsValue, Domain, ImageCustom};
use ferry_core::metadata::{Hashes, TargetFile};
use ferry_core::TargetName;
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// What `ferry repo add-target` says of a target besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// Target path in the repository; defaults to the file's name.
    pub name: Option<String>,
    pub hardware_ids: Vec<String>,
    pub domain: Option<Domain>,
    /// The software's name (defaults to the file name without its extension).
    pub software_name: Option<String>,
    pub version: Option<String>,
    pub provides: BTreeMap<String, String>,
    pub depends: BTreeMap<String, DependsValue>,
    pub clears: Option<Vec<String>>,
    pub release_counter: u64,
    /// Delegated role to add the target to (default: top-level targets, or its hashed bin).
    pub role: Option<String>,
    /// Also sign a sha512 hash. Off by default: sha256 alone is what aktualizr/ota-tuf and
    /// Mender sign, and every listed hash is verified at every hop, so each extra one costs
    /// every ECU a full pass over the image (sha512 runs ~4x slower than SHA-NI sha256).
    pub sha512: bool,
    /// Further custom fields (e.g. `ostree`), written as given.
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The signed entry of target `name`: its length and hashes, and its Uptane custom metadata
/// with the domain's defaults written out, so every reader (an ECU, the Director, another
/// vendor's tooling) sees the same provides and clears without knowing our rules.
fn target_file(
    name: &TargetName,
    options: &TargetOptions,
    length: u64,
    hashes: Hashes,
) -> Result<TargetFile> {
    let software_name = options.software_name.clone().unwrap_or_else(|| {
        let (_, file_name) = name.split_dir();
        file_name.split('.').next().unwrap_or(file_name).to_owned()
    });
    let mut custom = ImageCustom {
        clears_provides: options.clears.clone(),
        depends: options.depends.clone(),
        domain: Some(options.domain.clone().unwrap_or(Domain::App)),
        hardware_ids: options.hardware_ids.clone(),
        name: Some(software_name),
        provides: options.provides.clone(),
        release_counter: options.release_counter,
        version: options.version.clone(),
        extra: options.extra.clone(),
    };
    custom.provides = custom.effective_provides();
    custom.clears_provides = Some(custom.effective_clears());
    Ok(TargetFile {
        custom: Some(serde_json::to_value(&custom).map_err(|e| Error::Invalid(e.to_string()))?),
        hashes,
        length,
        extra: BTreeMap::new(),
    })
}

/// One row of `ferry repo list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedTarget {
    pub name: String,
    pub role: String,
    pub length: u64,
    pub sha256: Option<String>,
    pub custom: Option<serde_json::Value>,
}

impl Repository {
    /// Hash `file` (sha256, and sha512 if asked; streamed), store it at the spec paths
    /// `targets/dir/HASH.name`, and stage it with its Uptane custom metadata.
    /// `progress` is told the bytes hashed so far.
    pub fn add_target(
        &mut self,
        file: &Path,
        options: &TargetOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(String, TargetFile)> {
        let default_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Invalid(format!("{} has no file name", file.display())))?;
        let name = TargetName::new(options.name.clone().unwrap_or(default_name))?;
        let role = self.role_for_options(&name, options)?;
        let (length, hashes) = self.store_target_file(file, &name, options.sha512, progress)?;
        let target = target_file(&name, options, length, hashes)?;
        self.insert_target(&role, name.as_str(), target.clone())?;
        Ok((name.to_string(), target))
    }

    /// Stage an OSTree pull target (`custom.ostree.delivery = "pull"` in `options.extra`):
    /// no file is stored, the signed sha256 is the commit checksum and the length 0. Refused
    /// unless core takes it as a pull target ([`ostree_pull_commit`]), so no other target
    /// can be signed without its bytes.
    pub fn add_pull_target(
        &mut self,
        name: &str,
        commit: &str,
        options: &TargetOptions,
    ) -> Result<(String, TargetFile)> {
        let name = TargetName::new(name)?;
        let role = self.role_for_options(&name, options)?;
        let hashes: Hashes = [("sha256".to_owned(), commit.to_owned())].into();
        let target = target_file(&name, options, 0, hashes)?;
        if ostree_pull_commit(name.as_str(), &target)?.is_none() {
            return Err(Error::Invalid(format!(
                "target {name}: only an OSTree pull target (custom.ostree.delivery \"pull\") is staged without a file"
            )));
        }
        self.insert_target(&role, name.as_str(), target.clone())?;
        Ok((name.to_string(), target))
    }

    fn role_for_options(&mut self, name: &TargetName, options: &TargetOptions) -> Result<String> {
        if options.hardware_ids.is_empty() {
            return Err(Error::Invalid(
                "a target needs at least one --hardware-id".into(),
            ));
        }
        let role = self.role_for_new_target(name.as_str(), options.role.as_deref())?;
        crate::delegation::check_names(self, &role, &[name.to_string()])?;
        Ok(role)
    }

    /// Stage `target` under `name` in `role` (the file must already be stored).
    pub fn insert_target(&mut self, role: &str, name: &str, target: TargetFile) -> Result<()> {
        let name = TargetName::new(name)?;
        crate::delegation::check_names(self, role, &[name.to_string()])?;
        self.edit_targets(role, |t| {
            t.targets.insert(name.to_string(), target);
            Ok(())
        })
    }

    /// Stage many targets whose files are already stored, editing each role once: building a
    /// large catalogue must not rewrite a bin's staged file once per target.
    pub fn insert_targets(&mut self, items: Vec<(String, TargetFile)>) -> Result<()> {
        let mut per_role: BTreeMap<String, Vec<(String, TargetFile)>> = BTreeMap::new();
        for (name, target) in items {
            let name = TargetName::new(name)?.to_string();
            let role = self.role_for_new_target(&name, None)?;
            per_role.entry(role).or_default().push((name, target));
        }
        for (role, items) in per_role {
            let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
            crate::delegation::check_names(self, &role, &names)?;
            self.edit_targets(&role, |t| {
                t.targets.extend(items);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Where a new target goes: the named role (which must delegate its path), else its bin,
    /// else top-level targets.
    fn role_for_new_target(&mut self, name: &str, role: Option<&str>) -> Result<String> {
        let targets = self.targets_role("targets")?;
        let bins = targets
            .delegations
            .as_ref()
            .and_then(|d| d.succinct_roles.clone());
        match (role, bins) {
            (Some("targets"), Some(_)) => Err(Error::Invalid(
                "top-level targets delegates everything to hashed bins".into(),
            )),
            (Some(role), _) => {
                self.load_role(role)?;
                Ok(role.to_owned())
            }
            (None, Some(bins)) => Ok(bins.bin_for(name)),
            (None, None) => Ok("targets".into()),
        }
    }

    fn store_target_file(
        &self,
        file: &Path,
        name: &TargetName,
        with_sha512: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u64, Hashes)> {
        let (dir_part, _) = name.split_dir();
        let dir = self.layout.targets().join(dir_part);
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let mut input = std::fs::File::open(file).map_err(io_at(file))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".ferry-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(io_at(&dir))?;
        let mut sha256 = Sha256::new();
        let mut sha512 = with_sha512.then(Sha512::new);
        let mut buf = vec![0u8; 1 << 20];
        let mut length = 0u64;
        loop {
            let n = input.read(&mut buf).map_err(io_at(file))?;
            if n == 0 {
                break;
            }
            sha256.update(&buf[..n]);
            if let Some(h) = &mut sha512 {
                h.update(&buf[..n]);
            }
            tmp.write_all(&buf[..n]).map_err(io_at(tmp.path()))?;
            length += n as u64;
            progress(length);
        }
        tmp.as_file().sync_all().map_err(io_at(tmp.path()))?;
        let mut hashes = Hashes::new();
        hashes.insert("sha256".into(), hex::encode(sha256.finalize()));
        if let Some(h) = sha512 {
            hashes.insert("sha512".into(), hex::encode(h.finalize()));
        }
        // One stored file, linked under the name of every hash it is signed with (consistent
        // snapshot paths `dir/HASH.name`).
        let stored = |hash: &str| {
            let path = ferry_core::layout::consistent_target_path(name, hash);
            self.layout.targets().join(path)
        };
        let first = stored(&hashes["sha256"]);
        tmp.persist(&first).map_err(|e| io_at(&first)(e.error))?;
        if let Some(h512) = hashes.get("sha512") {
            let second = stored(h512);
            if !second.exists() && std::fs::hard_link(&first, &second).is_err() {
                std::fs::copy(&first, &second).map_err(io_at(&second))?;
            }
        }
        Ok((length, hashes))
    }

    /// Remove `name` from whichever role lists it. The stored file stays: published snapshots
    /// still point at it.
    pub fn remove_target(&mut self, name: &str) -> Result<String> {
        for role in self.all_targets_roles()? {
            if self.targets_role(&role)?.targets.contains_key(name) {
                self.edit_targets(&role, |t| {
                    t.targets.remove(name);
                    Ok(())
                })?;
                return Ok(role);
            }
        }
        Err(Error::NoSuchTarget(name.to_owned()))
    }

    /// Every targets role: top-level, then its delegations or bins.
    pub fn all_targets_roles(&mut self) -> Result<Vec<String>> {
        let targets = self.targets_role("targets")?;
        let mut roles = vec!["targets".to_owned()];
        if let Some(d) = &targets.delegations {
            if let Some(bins) = &d.succinct_roles {
                roles.extend(bins.bin_names());
            }
            roles.extend(d.roles.iter().flatten().map(|r| r.name.clone()));
        }
        Ok(roles)
    }

    /// Every target in the repository, as currently staged.
    pub fn list(&mut self) -> Result<Vec<ListedTarget>> {
        let mut rows = Vec::new();
        for role in self.all_targets_roles()? {
            for (name, t) in &self.targets_role(&role)?.targets {
                rows.push(ListedTarget {
                    name: name.clone(),
                    role: role.clone(),
                    length: t.length,
                    sha256: t.hashes.get("sha256").cloned(),
                    custom: t.custom.clone(),
                });
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }
}
