//! A whole Ferry world on 127.0.0.1 in one directory, built through the same library calls
//! the `ferry` commands make (repo init/add-target/publish, director init, the offline root,
//! admin tokens, `ferry admin` requests), with the long-running parts as real child
//! processes of `ferry` itself: `repo serve`, `director serve`, `secondary`, and `primary`
//! for each cycle. Used by `ferry demo`; written so benches and tests can reuse it.
//!
//! Layout of the directory: `img/` (Image repository), `d/` (Director; `d/roots/1.root.json`),
//! `offline/root.key` (the Director's root key, which a real deployment keeps offline),
//! `keys/SERIAL.key` (ECU keys), `SERIAL.toml` and `SERIAL-state/`, `SERIAL-apps/` per
//! Secondary, `primary.toml` and `primary-state/`, `logs/NAME.log` (every child's stderr).

mod backend;
pub mod procs;
mod vehicle;
pub mod workdir;

use crate::error::{Error, Result};
use ferry_core::metadata::uptane::{DependsValue, Domain};
use procs::{Launcher, Proc};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One ECU of the vehicle.
#[derive(Debug, Clone)]
pub struct EcuSpec {
    pub serial: String,
    pub hardware_id: String,
    /// What the ECU provides before any install (its factory image).
    pub initial_provides: BTreeMap<String, String>,
    /// Extra secondary.toml text for its domain installers (Secondaries only).
    pub extra_toml: String,
    /// Files it ships with (path relative to the world directory, bytes), written before it
    /// starts: an os slot's factory image, say (Secondaries only).
    pub files: Vec<(String, Vec<u8>)>,
}

/// The vehicle: a Primary (with its own ECU) and its Secondaries.
#[derive(Debug, Clone)]
pub struct VehicleSpec {
    pub vin: String,
    pub primary: EcuSpec,
    pub secondaries: Vec<EcuSpec>,
}

/// One image for the Image repository, with its Uptane custom metadata.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: String,
    /// The image's bytes, written to `DIR/images/` before it is added.
    pub bytes: Vec<u8>,
    pub hardware_ids: Vec<String>,
    pub domain: Domain,
    pub software_name: String,
    pub version: String,
    pub provides: BTreeMap<String, String>,
    pub depends: BTreeMap<String, DependsValue>,
    pub clears: Option<Vec<String>>,
    pub release_counter: u64,
}

/// What a Primary cycle (`ferry primary check --json`) ended with.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// Exit status 0: nothing was refused and nothing failed.
    pub success: bool,
    /// The cycle report (`result`, `detail`, `installed`, ...).
    pub report: serde_json::Value,
}

/// The world: its directory, its running processes and what the steps so far set up.
#[derive(Debug)]
pub struct World {
    pub dir: PathBuf,
    pub vehicle: VehicleSpec,
    launcher: Launcher,
    /// Stopped in reverse order of start on drop.
    procs: Vec<Proc>,
    pub image_repo_addr: Option<SocketAddr>,
    pub director_addr: Option<SocketAddr>,
    admin_token: Option<String>,
    secondary_addrs: Vec<SocketAddr>,
}

impl Drop for World {
    fn drop(&mut self) {
        while let Some(p) = self.procs.pop() {
            drop(p);
        }
    }
}

impl World {
    /// An empty world in `dir` (an existing, preferably empty, directory).
    pub fn new(dir: &Path, vehicle: VehicleSpec) -> Result<World> {
        let dir = dir.canonicalize().map_err(crate::error::io_at(dir))?;
        Ok(World {
            launcher: Launcher::new(&dir)?,
            dir,
            vehicle,
            procs: Vec::new(),
            image_repo_addr: None,
            director_addr: None,
            admin_token: None,
            secondary_addrs: Vec::new(),
        })
    }

    /// (name, pid) of every child started so far, running or not (one-shot runs included).
    pub fn started(&self) -> Vec<(String, u32)> {
        self.launcher.started()
    }

    /// An absolute path in the world's directory, as a string for a child's arguments (so
    /// every child's command line names the directory it belongs to).
    fn arg(&self, rel: &str) -> Result<String> {
        let path = self.dir.join(rel);
        path.to_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Check(format!("{}: expected a UTF-8 path", path.display())))
    }

    fn director_url(&self) -> Result<String> {
        self.director_addr
            .map(|a| format!("http://{a}"))
            .ok_or_else(|| Error::Check("the Director is not started yet".into()))
    }

    fn admin(&self) -> Result<crate::cmd::admin::client::AdminClient> {
        let token = self
            .admin_token
            .as_deref()
            .ok_or_else(|| Error::Check("no admin token yet: start the Director first".into()))?;
        crate::cmd::admin::client::AdminClient::plain(&self.director_url()?, token)
    }
}
