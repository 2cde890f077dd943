//! The vehicle of a world: ECU keys, the registration with the Director (`ferry admin
//! vehicle add`), each Secondary as a `ferry secondary` child (full verification), and the
//! Primary's cycles and status as `ferry primary` children.

use super::backend::private_file;
use super::{Cycle, World};
use crate::error::{io_at, Error, Result};
use ferry_director::model::{NewEcu, NewVehicle};
use ferry_keys::{KeyKind, PrivateKey};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Longest a Primary cycle may take before the world gives up on it (a 1 MiB image on
/// loopback takes well under a second; this only bounds a hang).
const CYCLE_LIMIT: Duration = Duration::from_secs(300);

/// TOML `initial_provides` table lines.
fn provides_toml(provides: &BTreeMap<String, String>) -> String {
    if provides.is_empty() {
        return String::new();
    }
    let mut text = String::from("[initial_provides]\n");
    for (k, v) in provides {
        text.push_str(&format!("{k:?} = {v:?}\n"));
    }
    text
}

impl World {
    /// ECU keys (`keys/SERIAL.key`, 0600) and the vehicle registered with the Director; its
    /// device token goes to `device.token`.
    pub fn register_vehicle(&self) -> Result<()> {
        let keys = self.dir.join("keys");
        std::fs::create_dir_all(&keys).map_err(io_at(&keys))?;
        let mut ecus = Vec::new();
        let v = &self.vehicle;
        for (ecu, primary) in
            std::iter::once((&v.primary, true)).chain(v.secondaries.iter().map(|s| (s, false)))
        {
            let key = PrivateKey::generate(KeyKind::Ed25519)?;
            key.write_file(keys.join(format!("{}.key", ecu.serial)), None)?;
            ecus.push(NewEcu {
                serial: ecu.serial.clone(),
                hardware_id: ecu.hardware_id.clone(),
                public_key: key.public_key().clone(),
                primary,
            });
        }
        let vehicle = NewVehicle {
            vin: v.vin.clone(),
            ecus,
        };
        let reply = crate::cmd::admin::vehicle::add(&self.admin()?, &vehicle)?;
        let token = reply["device_token"].as_str().ok_or_else(|| {
            Error::Check(format!(
                "registering {}: expected a device_token in the Director's reply, got {reply}",
                v.vin
            ))
        })?;
        private_file(&self.dir.join("device.token"), token)
    }

    /// Each Secondary as `ferry secondary --config SERIAL.toml` (full verification, both
    /// roots pinned), then primary.toml naming them.
    pub fn start_vehicle(&mut self) -> Result<Vec<(String, SocketAddr)>> {
        let mut started = Vec::new();
        for ecu in self.vehicle.secondaries.clone() {
            let s = &ecu.serial;
            for (rel, bytes) in &ecu.files {
                let path = self.dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                std::fs::write(&path, bytes).map_err(io_at(&path))?;
            }
            let toml = format!(
                "vin = \"{}\"\nserial = \"{s}\"\nhardware_id = \"{}\"\nkey = \"keys/{s}.key\"\n\
                 listen = \"127.0.0.1:0\"\ndata_dir = \"{s}-state\"\nverification = \"full\"\n\
                 director_root = \"d/roots/1.root.json\"\nimage_root = \"img/metadata/1.root.json\"\n\
                 apps_dir = \"{s}-apps\"\n{}{}",
                self.vehicle.vin,
                ecu.hardware_id,
                ecu.extra_toml,
                provides_toml(&ecu.initial_provides),
            );
            let path = self.dir.join(format!("{s}.toml"));
            std::fs::write(&path, toml).map_err(io_at(&path))?;
            let config = self.arg(&format!("{s}.toml"))?;
            let (proc, addr) = self.launcher.server(
                &format!("secondary-{s}"),
                &["secondary", "--config", &config],
            )?;
            self.procs.push(proc);
            self.secondary_addrs.push(addr);
            started.push((s.clone(), addr));
        }
        self.write_primary_config()?;
        Ok(started)
    }

    fn write_primary_config(&self) -> Result<()> {
        let (v, p) = (&self.vehicle, &self.vehicle.primary);
        let image = self
            .image_repo_addr
            .ok_or_else(|| Error::Check("start the Image repository before the vehicle".into()))?;
        let mut toml = format!(
            "vin = \"{}\"\ndata_dir = \"primary-state\"\npoll_interval = \"5m\"\n\
             [director]\nurl = \"{}\"\nroot = \"d/roots/1.root.json\"\ntoken_file = \"device.token\"\n\
             [image_repo]\nurl = \"http://{image}\"\nroot = \"img/metadata/1.root.json\"\n\
             [ecu]\nserial = \"{}\"\nhardware_id = \"{}\"\nkey = \"keys/{}.key\"\napps_dir = \"{}-apps\"\n",
            v.vin,
            self.director_url()?,
            p.serial,
            p.hardware_id,
            p.serial,
            p.serial,
        );
        if !p.initial_provides.is_empty() {
            toml.push_str("[ecu.initial_provides]\n");
            for (k, val) in &p.initial_provides {
                toml.push_str(&format!("{k:?} = {val:?}\n"));
            }
        }
        for (ecu, addr) in v.secondaries.iter().zip(&self.secondary_addrs) {
            toml.push_str(&format!(
                "[[secondaries]]\nserial = \"{}\"\nurl = \"http://{addr}\"\n",
                ecu.serial
            ));
        }
        let path = self.dir.join("primary.toml");
        std::fs::write(&path, toml).map_err(io_at(&path))
    }

    /// One Uptane cycle: `ferry primary --config primary.toml check --json`, as a child.
    /// `label` names its log file (`logs/primary-LABEL.log`).
    pub fn check(&self, label: &str) -> Result<Cycle> {
        let config = self.arg("primary.toml")?;
        let name = format!("primary-{label}");
        let (status, out) = self.launcher.run(
            &name,
            &["primary", "--config", &config, "check", "--json"],
            CYCLE_LIMIT,
        )?;
        let report = serde_json::from_str(&out).map_err(|e| {
            Error::Check(format!(
                "ferry primary check ({name}): expected a JSON cycle report on stdout ({e}), got \
                 {out:?} ({status}); see logs/{name}.log"
            ))
        })?;
        Ok(Cycle {
            success: status.success(),
            report,
        })
    }

    /// `ferry primary --config primary.toml status --json`: each ECU as it says itself.
    pub fn vehicle_status(&self) -> Result<serde_json::Value> {
        let config = self.arg("primary.toml")?;
        let (status, out) = self.launcher.run(
            "primary-status",
            &["primary", "--config", &config, "status", "--json"],
            CYCLE_LIMIT,
        )?;
        if !status.success() {
            return Err(Error::Check(format!(
                "ferry primary status: expected exit 0, got {status}; see logs/primary-status.log"
            )));
        }
        serde_json::from_str(&out).map_err(|e| {
            Error::Check(format!(
                "ferry primary status --json: expected JSON ({e}), got {out:?}"
            ))
        })
    }
}
