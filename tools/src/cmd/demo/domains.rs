//! What the demo installs, one entry per update domain: the target's custom metadata, the
//! image bytes it publishes, the ECU that gets it, the secondary.toml section that ECU's
//! installer needs, the files the ECU ships with, and what its disk must show once the
//! target is installed. The vehicle and the refused target live here too, so a new domain
//! is one function in this file.
//!
//! Domains: `app` (TCU and ADAS), `os` (A/B slots on the ADAS computer, file boot
//! environment, reboot simulated in-process) and `container` (an OCI image layout on the TCU).

use super::oci;
use crate::error::Result;
use crate::world::{EcuSpec, TargetSpec, VehicleSpec};
use ferry_core::metadata::uptane::{DependsValue, Domain};
use std::collections::BTreeMap;

pub const VIN: &str = "WVW-DEMO-1";
/// The Primary's own ECU (infotainment), and the two Secondaries.
pub const IVI: &str = "ivi-1";
pub const TCU: &str = "tcu-1";
pub const ADAS: &str = "adas-1";

/// The key the refused target depends on, and the value it wants.
pub const CUDA_KEY: &str = "rootfs-image.cuda.version";
pub const CUDA_VERSION: &str = "11.8";

/// One domain's part of the demo.
#[derive(Debug, Clone)]
pub struct DomainDemo {
    /// The ECU (serial) that installs it.
    pub ecu: &'static str,
    pub target: TargetSpec,
    /// secondary.toml text the ECU's installer for this domain needs (empty: none).
    pub secondary_toml: String,
    /// Files the ECU has before it starts (path relative to the world directory, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// What the ECU's disk shows once the target is installed, beyond what it reports.
    pub on_disk: Vec<OnDisk>,
}

/// A file of an ECU, read from the world directory after the update cycles.
#[derive(Debug, Clone)]
pub struct OnDisk {
    /// Relative to the world directory.
    pub path: String,
    pub want: Want,
    /// The story's ✓ line when it holds.
    pub says: String,
}

#[derive(Debug, Clone)]
pub enum Want {
    /// Exactly these bytes.
    Bytes(Vec<u8>),
    /// Each of these lines, among others.
    Lines(Vec<String>),
}

impl DomainDemo {
    pub fn domain(&self) -> &str {
        self.target.domain.as_str()
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Deterministic image bytes: `len` bytes of a pattern seeded by `seed`, so every run
/// publishes the same hashes.
fn image(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed as u32) as u8)
        .collect()
}

/// A target with the domain's default provides (`<namespace>.<name>.version`) and clears.
fn target(name: &str, domain: Domain, software: &str, version: &str, hw: &str) -> TargetSpec {
    TargetSpec {
        name: name.into(),
        bytes: image(name.len() as u8, 256 << 10),
        hardware_ids: vec![hw.into()],
        domain,
        software_name: software.into(),
        version: version.into(),
        provides: BTreeMap::new(),
        depends: BTreeMap::new(),
        clears: None,
        release_counter: 1,
    }
}

/// The vehicle: the Primary's own ECU and two Secondaries, each with the provides of its
/// factory image. The domain entries add their installers' secondary.toml sections.
pub fn vehicle(domains: &[DomainDemo]) -> VehicleSpec {
    let ecu = |serial: &str, hw: &str, provides: &[(&str, &str)]| EcuSpec {
        serial: serial.into(),
        hardware_id: hw.into(),
        initial_provides: map(provides),
        extra_toml: domains
            .iter()
            .filter(|d| d.ecu == serial)
            .map(|d| d.secondary_toml.as_str())
            .collect(),
        files: domains
            .iter()
            .filter(|d| d.ecu == serial)
            .flat_map(|d| d.files.iter().cloned())
            .collect(),
    };
    VehicleSpec {
        vin: VIN.into(),
        primary: ecu(IVI, "ivi-a53", &[("rootfs-image.version", "2026.1")]),
        secondaries: vec![
            ecu(TCU, "tcu-m4", &[("rootfs-image.version", "4.2")]),
            // The ADAS computer's factory image has no CUDA runtime.
            ecu(ADAS, "adas-orin", &[("rootfs-image.version", "1.0")]),
        ],
    }
}

/// Every domain the demo installs, in assignment order.
pub fn all() -> Result<Vec<DomainDemo>> {
    Ok(vec![app(), second_app(), os(), container()?])
}

/// The app domain: a persistent application on the TCU, installed under its apps_dir with
/// the previous copy kept as a backup; provides `data-partition.demo-app.version=1.0`.
fn app() -> DomainDemo {
    DomainDemo {
        ecu: TCU,
        target: target(
            "apps/demo-app-1.0.tar",
            Domain::App,
            "demo-app",
            "1.0",
            "tcu-m4",
        ),
        secondary_toml: String::new(),
        files: Vec::new(),
        on_disk: Vec::new(),
    }
}

/// A second app, on the ADAS computer: lane-keeping parameters.
fn second_app() -> DomainDemo {
    DomainDemo {
        ecu: ADAS,
        target: target(
            "apps/lane-assist-3.1.tar",
            Domain::App,
            "lane-assist",
            "3.1",
            "adas-orin",
        ),
        secondary_toml: String::new(),
        files: Vec::new(),
        on_disk: Vec::new(),
    }
}

/// The os domain: an A/B rootfs image for the ADAS computer. Its slots are two image files
/// in the ECU's data directory (the os installer creates a missing slot file and trims an
/// image file to the image, so no size is needed; slot a gets the factory image so the
/// fallback is real). File boot environment, no reboot_command: the Secondary simulates
/// the reboot in-process. Clears `rootfs-image.*`, provides `rootfs-image.version=2.0`
/// (still no CUDA).
fn os() -> DomainDemo {
    let mut target = target(
        "os/adas-rootfs-2.0.img",
        Domain::Os,
        "adas-rootfs",
        "2.0",
        "adas-orin",
    );
    target.provides = map(&[("rootfs-image.version", "2.0")]);
    let dir = format!("{ADAS}-state");
    let factory = image(1, 192 << 10);
    let secondary_toml = format!(
        "[os]\nslots = [\"{dir}/slot-a.img\", \"{dir}/slot-b.img\"]\nboot = \"file\"\n\
         boot_env = \"{dir}/bootenv\"\nbootlimit = 3\n"
    );
    let on_disk = vec![
        OnDisk {
            path: format!("{dir}/bootenv"),
            want: Want::Lines(
                ["boot_slot=b", "upgrade_available=0", "bootcount=0"]
                    .map(String::from)
                    .to_vec(),
            ),
            says: format!(
                "{ADAS} booted slot b: {dir}/bootenv has boot_slot=b, upgrade_available=0 \
                 (committed after the simulated reboot)"
            ),
        },
        OnDisk {
            path: format!("{dir}/slot-b.img"),
            want: Want::Bytes(target.bytes.clone()),
            says: format!(
                "{ADAS} slot b ({dir}/slot-b.img) holds {} byte for byte",
                target.name
            ),
        },
        OnDisk {
            path: format!("{dir}/slot-a.img"),
            want: Want::Bytes(factory.clone()),
            says: format!("{ADAS} slot a still holds the factory image, the fallback"),
        },
    ];
    DomainDemo {
        ecu: ADAS,
        files: vec![
            (format!("{dir}/slot-a.img"), factory),
            (format!("{dir}/slot-b.img"), Vec::new()),
        ],
        target,
        secondary_toml,
        on_disk,
    }
}

/// The container domain: an OCI image layout archive for the TCU's telemetry service, kept
/// in a store in the ECU's data directory; provides `data-partition.telemetry.version=5.0`.
/// No runtime hook (the demo runs no container engine); the health check shows the commit
/// gate by checking the live layout is in place.
fn container() -> Result<DomainDemo> {
    let mut target = target(
        "containers/telemetry-5.0.tar",
        Domain::Container,
        "telemetry",
        "5.0",
        "tcu-m4",
    );
    let layout = oci::image(
        "telemetry",
        "5.0",
        &[
            (
                "usr/bin/telemetry",
                b"#!/bin/sh\nexec /usr/bin/can-logger --config /etc/telemetry/telemetry.toml\n",
                0o755,
            ),
            (
                "etc/telemetry/telemetry.toml",
                b"interval = \"10s\"\nsignals = [\"speed\", \"soc\"]\n",
                0o644,
            ),
        ],
    )?;
    target.bytes = layout.archive;
    let store = format!("{TCU}-state/containers");
    Ok(DomainDemo {
        ecu: TCU,
        target,
        secondary_toml: format!(
            "[container]\nstore_dir = \"{store}\"\n\
             health_check = [\"sh\", \"-c\", \"test -f \\\"$FERRY_OCI_LAYOUT/index.json\\\"\"]\n"
        ),
        files: Vec::new(),
        on_disk: vec![OnDisk {
            path: format!("{store}/refs/current/telemetry"),
            want: Want::Lines(vec![layout.id.clone()]),
            says: format!(
                "{TCU} runs telemetry as OCI image {}… ({store}/refs/current/telemetry)",
                &layout.id[..12]
            ),
        }],
    })
}

/// The target the demo shows refused: an inference app for the ADAS computer. Without
/// `with_depends` it is as first published (no depends); with it, as its supplier re-signs
/// it: depends `rootfs-image.cuda.version = 11.8`, which no ECU provides.
pub fn needs_cuda(with_depends: bool) -> (&'static str, TargetSpec) {
    let mut t = target(
        "apps/inference-1.0.tar",
        Domain::App,
        "inference",
        "1.0",
        "adas-orin",
    );
    if with_depends {
        t.depends = BTreeMap::from([(
            CUDA_KEY.to_owned(),
            DependsValue::One(CUDA_VERSION.to_owned()),
        )]);
    }
    (ADAS, t)
}
