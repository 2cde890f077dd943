//! `ferry-primary status`: each ECU's installed image, provides and last result, and what the
//! last cycle and the last offline install did, and how many offline receipts wait for the
//! next online cycle. The own ECU's status is read at rest (never through `Ecu::open`, which
//! would discard a staged image of a cycle running in another process).

use crate::config::Config;
use crate::cycle::CycleReport;
use crate::distribute::{EcuLink, EcuStatus, SecondaryClient};
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct EcuEntry {
    pub serial: String,
    pub primary: bool,
    /// `None` when the ECU could not be reached; `error` says why.
    pub status: Option<EcuStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VehicleStatus {
    pub vin: String,
    pub ecus: Vec<EcuEntry>,
    pub last_cycle: Option<CycleReport>,
    pub last_offline: Option<crate::offline::OfflineReport>,
    /// Receipts of offline installs not yet delivered to the Director.
    pub pending_receipts: usize,
}

fn own_status(config: &Config) -> Result<EcuStatus> {
    let ecu = config.own_ecu_config()?;
    ferry_secondary::status_at_rest(&ecu).map_err(|source| Error::own_ecu(&ecu.serial, source))
}

/// Gather the status of every ECU; an unreachable Secondary is listed with its error.
pub fn vehicle_status(config: &Config) -> Result<VehicleStatus> {
    let mut ecus = vec![EcuEntry {
        serial: config.ecu.serial.clone(),
        primary: true,
        status: Some(own_status(config)?),
        error: None,
    }];
    let policy = config.fetch_policy();
    for s in &config.secondaries {
        let mut client = SecondaryClient::new(
            &s.serial,
            &s.url,
            policy.read_timeout,
            policy.min_bytes_per_sec,
            config.vehicle_tls.as_ref(),
        )?;
        let (status, error) = match client.status() {
            Ok(st) => (Some(st), None),
            Err(e) => (None, Some(e.to_string())),
        };
        ecus.push(EcuEntry {
            serial: s.serial.clone(),
            primary: false,
            status,
            error,
        });
    }
    let last_cycle = std::fs::read(config.last_cycle_file())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let last_offline = std::fs::read(config.last_offline_file())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(VehicleStatus {
        vin: config.vin.clone(),
        ecus,
        last_cycle,
        last_offline,
        pending_receipts: crate::offline::receipt::pending(config)?.len(),
    })
}

/// The human-readable form.
pub fn print(status: &VehicleStatus) {
    println!("vehicle {}", status.vin);
    for e in &status.ecus {
        let role = if e.primary { " (primary)" } else { "" };
        println!("ECU {}{role}", e.serial);
        let Some(s) = &e.status else {
            println!("  unreachable: {}", e.error.as_deref().unwrap_or(""));
            continue;
        };
        match &s.installed {
            Some(i) => println!("  installed: {} ({} bytes)", i.target, i.length),
            None => println!("  installed: (nothing)"),
        }
        for (domain, d) in &s.installed_domains {
            let version = d.version.as_deref().unwrap_or("-");
            println!(
                "  {domain}: {} version {version} ({} bytes)",
                d.target, d.length
            );
        }
        if let Some(state) = &s.in_flight {
            println!("  install in flight: {state}");
        }
        for (k, v) in &s.provides {
            println!("  provides: {k}={v}");
        }
        if let Some(o) = &s.last_install {
            println!("  last result: {} {}: {}", o.result, o.target, o.detail);
        }
        if !s.attacks_detected.is_empty() {
            println!("  attacks detected: {}", s.attacks_detected);
        }
    }
    if let Some(c) = &status.last_cycle {
        println!("last cycle {}: {} {}", c.time, c.result, c.detail);
    }
    if let Some(o) = &status.last_offline {
        let name = o.name.as_deref().unwrap_or("?");
        println!(
            "last offline install {} (bundle {name}): {} {}",
            o.time, o.result, o.detail
        );
    }
    if status.pending_receipts > 0 {
        println!(
            "offline receipts waiting for the next online cycle: {}",
            status.pending_receipts
        );
    }
}
