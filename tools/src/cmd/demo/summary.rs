//! What the demo ends with: each ECU's row (as the ECU says and as the Director heard it),
//! the table a person reads, and the JSON summary a script checks.

use super::domains::DomainDemo;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One ECU at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct EcuRow {
    pub serial: String,
    /// "primary" or "secondary".
    pub role: String,
    pub hardware_id: String,
    /// The image it runs, as the ECU says.
    pub installed: Option<String>,
    /// Domain → target, for every assignment the Director lists installed on this ECU.
    pub domains: BTreeMap<String, String>,
    pub provides: BTreeMap<String, String>,
    /// Its last install result, as the ECU says (`result: detail`).
    pub last_install: Option<String>,
}

/// A target refused before installation.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub target: String,
    pub ecu: String,
    pub depends: BTreeMap<String, String>,
    /// Who refused it on the vehicle ("primary"), before any download.
    pub refused_by: String,
    /// The vehicle's reason, in Mender's words.
    pub reason: String,
    /// The Director's reason for refusing a new assignment of it.
    pub director_reason: String,
}

/// The `status` of every assignment in the Director's view.
pub fn assignment_statuses(view: &Value) -> Vec<String> {
    view["assignments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["status"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Each ECU from `ferry primary status --json` (`vehicle`) and the Director's view
/// (`director`); an ECU the Primary could not reach fails the check.
pub fn ecu_rows(vehicle: &Value, director: &Value, domains: &[DomainDemo]) -> Result<Vec<EcuRow>> {
    let domain_of: BTreeMap<&str, &str> = domains
        .iter()
        .map(|d| (d.target.name.as_str(), d.domain()))
        .collect();
    let mut rows = Vec::new();
    for e in vehicle["ecus"].as_array().into_iter().flatten() {
        let serial = e["serial"].as_str().unwrap_or_default().to_owned();
        let status = &e["status"];
        if status.is_null() {
            return Err(Error::Check(format!(
                "ferry primary status: expected ECU {serial} reachable, got {}",
                e["error"]
            )));
        }
        let registered = director["vehicle"]["ecus"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["serial"] == serial.as_str()))
            .ok_or_else(|| {
                Error::Check(format!("Director status: expected ECU {serial} registered"))
            })?;
        let installed = status["installed"]["target"].as_str().map(str::to_owned);
        let reported = registered["reported"]["installed_image"]["filepath"]
            .as_str()
            .filter(|s| !s.is_empty());
        if installed.as_deref() != reported {
            return Err(Error::Check(format!(
                "{serial}: the ECU says it runs {installed:?}, the Director heard {reported:?}"
            )));
        }
        let mut by_domain = BTreeMap::new();
        for a in director["assignments"].as_array().into_iter().flatten() {
            let target = a["target_name"].as_str().unwrap_or_default();
            if a["ecu_serial"] == serial.as_str() && a["status"] == "installed" {
                let domain = domain_of.get(target).copied().unwrap_or("?");
                by_domain.insert(domain.to_owned(), target.to_owned());
            }
        }
        let last = &status["last_install"];
        rows.push(EcuRow {
            role: if e["primary"] == true {
                "primary"
            } else {
                "secondary"
            }
            .into(),
            hardware_id: registered["hardware_id"]
                .as_str()
                .unwrap_or_default()
                .into(),
            installed,
            domains: by_domain,
            provides: string_map(&status["provides"]),
            last_install: last.is_object().then(|| {
                format!(
                    "{} {}: {}",
                    last["target"].as_str().unwrap_or(""),
                    last["result"].as_str().unwrap_or(""),
                    last["detail"].as_str().unwrap_or("")
                )
            }),
            serial,
        });
    }
    Ok(rows)
}

/// The per-ECU table.
pub fn table(rows: &[EcuRow]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "ECU",
        "role",
        "hardware",
        "installed",
        "domains",
        "provides",
    ]);
    for r in rows {
        let lines = |m: &BTreeMap<String, String>, sep: &str| {
            let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}{sep}{v}")).collect();
            items.join("\n")
        };
        t.add_row([
            r.serial.clone(),
            r.role.clone(),
            r.hardware_id.clone(),
            r.installed
                .clone()
                .unwrap_or_else(|| "(factory image)".into()),
            lines(&r.domains, ": "),
            lines(&r.provides, "="),
        ]);
    }
    t
}

/// Every domain with at least one installed target.
pub fn installed_domains(rows: &[EcuRow]) -> BTreeSet<String> {
    rows.iter()
        .flat_map(|r| r.domains.keys().cloned())
        .collect()
}
