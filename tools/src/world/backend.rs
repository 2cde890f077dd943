//! The OEM backend of a world: the Image repository (`img/`) and the Director (`d/`), set up
//! by the library calls `ferry repo` and `ferry director` make, then served by `ferry repo
//! serve` and `ferry director serve` child processes.

use super::{TargetSpec, World};
use crate::cmd::director::{init as director_init, root as director_root, token};
use crate::error::{io_at, Result};
use ferry_core::metadata::TargetFile;
use ferry_core::{Clock, SystemClock};
use ferry_director::model::Scope;
use ferry_director::root::RoleSpec;
use ferry_image_repo::{PublishReport, Repository, TargetOptions};
use ferry_keys::{KeyKind, PrivateKey};
use std::net::SocketAddr;
use std::time::Duration;

/// Lifetime of the demo's Director root (a real one is re-signed offline yearly).
const ROOT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Write `text` to `path` with mode 0600 (tokens and keys).
pub fn private_file(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io_at(path))?;
    let mut perms = std::fs::metadata(path).map_err(io_at(path))?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(path, perms).map_err(io_at(path))
}

impl World {
    /// `ferry repo init img`: keys in img/keys, root v1, empty targets, snapshot, timestamp.
    pub fn init_image_repo(&self) -> Result<PublishReport> {
        let dir = self.dir.join("img");
        let options = ferry_image_repo::InitOptions::default();
        match ferry_image_repo::init(&dir, SystemClock.now(), &options)? {
            (_, ferry_image_repo::Initialised::Published(report)) => Ok(report),
            (_, other) => Err(crate::error::Error::Usage(format!(
                "a development repository with every key here was not published: {other:?}"
            ))),
        }
    }

    /// `ferry repo add-target` for each of `targets` (added again if the name exists: new
    /// custom metadata), then `ferry repo publish`. Returns each target as signed.
    pub fn publish(&self, targets: &[TargetSpec]) -> Result<(Vec<TargetFile>, PublishReport)> {
        let mut repo = Repository::open(&self.dir.join("img"), SystemClock.now())?;
        let images = self.dir.join("images");
        std::fs::create_dir_all(&images).map_err(io_at(&images))?;
        let mut files = Vec::new();
        for t in targets {
            let file = images.join(t.name.replace('/', "_"));
            std::fs::write(&file, &t.bytes).map_err(io_at(&file))?;
            let options = TargetOptions {
                name: Some(t.name.clone()),
                hardware_ids: t.hardware_ids.clone(),
                domain: Some(t.domain.clone()),
                software_name: Some(t.software_name.clone()),
                version: Some(t.version.clone()),
                provides: t.provides.clone(),
                depends: t.depends.clone(),
                clears: t.clears.clone(),
                release_counter: t.release_counter,
                role: None,
                sha512: false,
                extra: Default::default(),
            };
            let (_, signed) = repo.add_target(&file, &options, &mut |_| {})?;
            files.push(signed);
        }
        Ok((files, repo.publish()?))
    }

    /// `ferry repo serve img --listen 127.0.0.1:0`.
    pub fn serve_image_repo(&mut self) -> Result<SocketAddr> {
        let img = self.arg("img")?;
        let (proc, addr) = self.launcher.server(
            "repo-serve",
            &["repo", "serve", &img, "--listen", "127.0.0.1:0"],
        )?;
        self.procs.push(proc);
        self.image_repo_addr = Some(addr);
        Ok(addr)
    }

    /// The Director: `ferry director init d` (online keys), root v1 signed by an offline
    /// key (`ferry director root init`), a write admin token (`ferry director token
    /// create`), the Image repository pinned, then `ferry director serve` on port 0.
    pub fn start_director(&mut self) -> Result<SocketAddr> {
        let d = self.dir.join("d");
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let (config, _) = director_init::create(&d, listen)?;

        let offline = self.dir.join("offline");
        std::fs::create_dir_all(&offline).map_err(io_at(&offline))?;
        let root_key = PrivateKey::generate(KeyKind::Ed25519)?;
        root_key.write_file(offline.join("root.key"), None)?;
        let online = |role: &str| -> Result<RoleSpec> {
            let path = d.join("keys").join(format!("{role}.pem"));
            Ok(RoleSpec {
                threshold: 1,
                keys: vec![crate::keyfile::public_key(&path, None)?],
            })
        };
        let roles = [
            online("targets")?,
            online("snapshot")?,
            online("timestamp")?,
        ];
        let root_key: std::sync::Arc<dyn ferry_keys::Signer> = std::sync::Arc::new(root_key);
        let root = director_root::first_root(&[root_key], None, roles, ROOT_LIFETIME)?;
        director_root::write_new(&d.join("roots/1.root.json"), &root)?;

        let (_, secret) = token::create(&config, "demo-ops", Scope::Write, None)?;
        private_file(&self.dir.join("ops.token"), &secret)?;
        self.admin_token = Some(secret);

        let repo = self.image_repo_addr.ok_or_else(|| {
            crate::error::Error::Check("start the Image repository before the Director".into())
        })?;
        let mut text = std::fs::read_to_string(&config).map_err(io_at(&config))?;
        text.push_str(&format!(
            "\n[image_repo]\nurl = \"http://{repo}\"\nroot = \"../img/metadata/1.root.json\"\n"
        ));
        std::fs::write(&config, text).map_err(io_at(&config))?;

        let config = self.arg("d/director.toml")?;
        let (proc, addr) = self.launcher.server(
            "director-serve",
            &["director", "serve", "--config", &config, "--json"],
        )?;
        self.procs.push(proc);
        self.director_addr = Some(addr);
        Ok(addr)
    }

    /// `ferry admin assign VIN --target ECU=TARGET ...`: the Director's reply, or its
    /// refusal (an `Error::Admin` naming the check).
    pub fn assign(&self, pairs: &[(&str, &str)]) -> Result<serde_json::Value> {
        crate::cmd::admin::assign::assign(&self.admin()?, &self.vehicle.vin, pairs, None)
    }

    /// `ferry admin cancel VIN`: every active assignment of the vehicle withdrawn.
    pub fn cancel_assignments(&self) -> Result<serde_json::Value> {
        let path = format!("/vehicles/{}/assignments", self.vehicle.vin);
        self.admin()?.delete(&path)
    }

    /// `ferry admin status VIN --json`: the Director's view (ECU reports, assignments).
    pub fn director_status(&self) -> Result<serde_json::Value> {
        crate::cmd::admin::status::status(&self.admin()?, &self.vehicle.vin)
    }
}
