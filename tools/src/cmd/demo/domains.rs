//! What the demo installs, one entry per update domain: the target's custom metadata, the
//! image bytes it publishes, the ECU that gets it, and the secondary.toml section that ECU's
//! installer needs. The vehicle and the refused target live here too, so a new domain is
//! one function in this file.
//!
//! Today the vehicle side has the `app` installer; [`os`] and [`container`] are written but
//! switched off until their installers land (fill in `secondary_toml` and flip `READY`).

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
    pub secondary_toml: &'static str,
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
            .map(|d| d.secondary_toml)
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
pub fn all() -> Vec<DomainDemo> {
    [Some(app()), Some(second_app()), os(), container()]
        .into_iter()
        .flatten()
        .collect()
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
        secondary_toml: "",
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
        secondary_toml: "",
    }
}

/// The os domain: an A/B rootfs image for the ADAS computer that clears `rootfs-image.*`
/// and provides `rootfs-image.version=2.0` (still no CUDA).
/// To switch on: set `secondary_toml` to the `[os]` section the os installer reads (slots,
/// boot environment) and `READY` to true.
fn os() -> Option<DomainDemo> {
    const READY: bool = false;
    let mut target = target(
        "os/adas-rootfs-2.0.img",
        Domain::Os,
        "adas-rootfs",
        "2.0",
        "adas-orin",
    );
    target.provides = map(&[("rootfs-image.version", "2.0")]);
    READY.then_some(DomainDemo {
        ecu: ADAS,
        target,
        secondary_toml: "",
    })
}

/// The container domain: an OCI image layout archive for the TCU's telemetry service,
/// provides `data-partition.telemetry.version=5.0`.
/// To switch on: set `secondary_toml` to the `[container]` section its installer reads
/// (store directory, runtime hook) and `READY` to true; `bytes` may need to be a real OCI
/// layout tar if the installer checks it.
fn container() -> Option<DomainDemo> {
    const READY: bool = false;
    let target = target(
        "containers/telemetry-5.0.tar",
        Domain::Container,
        "telemetry",
        "5.0",
        "tcu-m4",
    );
    READY.then_some(DomainDemo {
        ecu: TCU,
        target,
        secondary_toml: "",
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
