//! The demo's first steps: backend, vehicle, then rounds of assignments and update cycles,
//! and the checks that every ECU runs what it was assigned, as the ECUs, the Director and
//! the ECUs' own files each say.

use super::domains::{DomainDemo, OnDisk, Want, ADAS, IVI, TCU, VIN};
use super::story::Story;
use super::summary;
use crate::error::{io_at, Error, Result};
use crate::world::{TargetSpec, World};
use ferry_core::metadata::TargetFile;
use std::collections::BTreeMap;

fn pairs_text(map: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    items.join(", ")
}

/// Each target's effective provides (its domain's default `.version` key included).
pub fn provides_of(name: &str, file: &TargetFile) -> Result<BTreeMap<String, String>> {
    Ok(file.image_custom(name)?.effective_provides())
}

/// Steps 1 to 3: the Image repository with every domain's target, the Director, the vehicle.
/// Returns each target as signed.
pub fn backend_and_vehicle(
    world: &mut World,
    story: &mut Story,
    domains: &[DomainDemo],
) -> Result<BTreeMap<String, TargetFile>> {
    story.step("Image repository: sign each image with its Uptane custom metadata");
    story.busy("repo init, add-target, publish");
    world.init_image_repo()?;
    let targets: Vec<TargetSpec> = domains.iter().map(|d| d.target.clone()).collect();
    let (files, report) = world.publish(&targets)?;
    for (d, file) in domains.iter().zip(&files) {
        let t = &d.target;
        story.note(&format!(
            "{}  domain {}, hardwareIds {}, releaseCounter {}, provides {}",
            t.name,
            d.domain(),
            t.hardware_ids.join(","),
            t.release_counter,
            pairs_text(&provides_of(&t.name, file)?)
        ));
    }
    let versions: Vec<String> = report
        .roles
        .iter()
        .map(|(r, v)| format!("{r} v{v}"))
        .chain(report.snapshot.map(|v| format!("snapshot v{v}")))
        .chain(report.timestamp.map(|v| format!("timestamp v{v}")))
        .collect();
    story.ok(&format!("signed and published: {}", versions.join(", ")));
    let addr = world.serve_image_repo()?;
    story.ok(&format!(
        "serving metadata/ and targets/ on http://{addr} (ferry repo serve)"
    ));

    story.step("Director: online keys, a root signed offline, SQLite inventory");
    story.busy("director init, root init, token create, serve");
    let addr = world.start_director()?;
    story.ok("root v1 signed by the offline root key (offline/root.key); the server holds only the online keys");
    story.ok(&format!(
        "serving the device and admin APIs on http://{addr} (ferry director serve; d/data/director.db)"
    ));

    story.step(&format!(
        "Vehicle {VIN}: Primary {IVI} and Secondaries {TCU}, {ADAS}"
    ));
    story.busy("ECU keys, registration");
    world.register_vehicle()?;
    story.ok("registered 3 ECU keys with the Director; the vehicle got its device token");
    story.busy("starting the Secondaries");
    for (serial, addr) in world.start_vehicle()? {
        story.ok(&format!(
            "{serial}: ferry secondary on http://{addr}, full verification (both roots pinned)"
        ));
    }
    Ok(targets.into_iter().map(|t| t.name).zip(files).collect())
}

/// The assignments in rounds: Director targets name at most one image per ECU (the Primary
/// refuses two for one ECU), so an ECU's second target waits for the next round. Each ECU's
/// targets keep their order in `domains`.
pub fn rounds(domains: &[DomainDemo]) -> Vec<Vec<DomainDemo>> {
    let mut rounds: Vec<Vec<DomainDemo>> = Vec::new();
    for (i, d) in domains.iter().enumerate() {
        let round = domains[..i].iter().filter(|e| e.ecu == d.ecu).count();
        if rounds.len() <= round {
            rounds.resize_with(round + 1, Vec::new);
        }
        rounds[round].push(d.clone());
    }
    rounds
}

/// Step 4 of each round: the round's targets assigned, one per ECU.
pub fn assign(world: &World, story: &mut Story, round: &[DomainDemo], title: &str) -> Result<()> {
    story.step(&format!(
        "Assignments{title}: the Director checks hardwareIds and depends, then signs per vehicle"
    ));
    let pairs: Vec<(&str, &str)> = round
        .iter()
        .map(|d| (d.ecu, d.target.name.as_str()))
        .collect();
    let reply = world.assign(&pairs)?;
    let accepted = reply.as_array().map_or(0, Vec::len);
    if accepted != pairs.len() {
        return Err(Error::Check(format!(
            "assignments: expected the Director to accept {} targets, it answered {reply}",
            pairs.len()
        )));
    }
    for d in round {
        story.ok(&format!("{} <- {} ({})", d.ecu, d.target.name, d.domain()));
    }
    Ok(())
}

/// Step 5 of each round: Primary cycles until the Director reports `installed` assignments
/// installed in all. `cycles` counts the cycles run so far (it names each cycle's log) and
/// is returned updated.
pub fn update(
    world: &World,
    story: &mut Story,
    title: &str,
    installed: usize,
    mut cycles: usize,
) -> Result<usize> {
    story.step(&format!(
        "Update cycle{title}: ferry primary check (the Uptane order, all or nothing)"
    ));
    let first = cycles;
    loop {
        cycles += 1;
        story.busy(&format!(
            "cycle {cycles}: verify both repositories, download, distribute, install, report"
        ));
        let label = format!("cycle-{cycles}");
        let cycle = world.check(&label)?;
        let result = cycle.report["result"].as_str().unwrap_or("?").to_owned();
        if !cycle.success {
            return Err(Error::Check(format!(
                "update cycle {cycles}: expected every ECU to install its target, got {result}: \
                 {} (see logs/primary-{label}.log)",
                cycle.report["detail"].as_str().unwrap_or("")
            )));
        }
        let done: Vec<String> = cycle.report["installed"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(ecu, t)| format!("{ecu} installed {}", t.as_str().unwrap_or("?")))
                    .collect()
            })
            .unwrap_or_default();
        story.note(&format!(
            "cycle {cycles}: {result}{}{}",
            if done.is_empty() { "" } else { ": " },
            done.join(", ")
        ));
        let view = world.director_status()?;
        let statuses = summary::assignment_statuses(&view);
        if statuses
            .iter()
            .filter(|s| s.as_str() == "installed")
            .count()
            >= installed
        {
            break;
        }
        // One cycle installs a round; a second covers a report the Director had not seen.
        if cycles - first >= 2 {
            return Err(Error::Check(format!(
                "update: expected {installed} assignments installed after {} cycles; \
                 the Director says {statuses:?}",
                cycles - first
            )));
        }
    }
    story.done();
    Ok(cycles)
}

/// What every cycle checked, said once after the last round.
pub fn uptane_checks(story: &mut Story) {
    for check in [
        "Director metadata verified: root, timestamp, snapshot, targets (signatures, thresholds, versions, expiry; only this vehicle's ECUs)",
        "Image repository metadata verified: root, timestamp, snapshot, targets",
        "each Director target matches the Image repository's: length, sha256 and sha512, hardwareId, releaseCounter",
        "depends checked against each ECU's provides before any download",
        "each Secondary verified the metadata and the image again itself before installing",
        "the Director accepted the signed vehicle manifest (fresh nonce, every ECU report signed)",
    ] {
        story.ok(check);
    }
}

/// After the last round: each ECU provides what its targets provide and runs the last one, as the
/// ECU says (`ferry primary status`) and as the Director heard it.
pub fn verify_installed(
    world: &World,
    story: &mut Story,
    domains: &[DomainDemo],
    files: &BTreeMap<String, TargetFile>,
) -> Result<()> {
    let rows = summary::ecu_rows(&world.vehicle_status()?, &world.director_status()?, domains)?;
    for d in domains {
        let name = &d.target.name;
        let row = rows.iter().find(|r| r.serial == d.ecu).ok_or_else(|| {
            Error::Check(format!(
                "ferry primary status: expected ECU {} listed",
                d.ecu
            ))
        })?;
        let file = files.get(name).ok_or_else(|| {
            Error::Check(format!("{name}: expected it among the published targets"))
        })?;
        for (k, v) in provides_of(name, file)? {
            if row.provides.get(&k) != Some(&v) {
                return Err(Error::Check(format!(
                    "{}: expected it to provide {k}={v} after installing {name}, it provides {}",
                    d.ecu,
                    pairs_text(&row.provides)
                )));
            }
        }
        if row.domains.get(d.domain()) != Some(name) {
            return Err(Error::Check(format!(
                "{}: expected the Director to list {name} installed, it lists {:?}",
                d.ecu, row.domains
            )));
        }
        story.ok(&format!(
            "{} installed {name}: it provides {}, and the Director heard the same",
            d.ecu,
            pairs_text(&provides_of(name, file)?)
        ));
        for check in &d.on_disk {
            on_disk(world, check)?;
            story.ok(&check.says);
        }
    }
    Ok(())
}

/// What the ECU's reports cannot show (which slot boots, which image the store runs), read
/// from its files in the world directory.
fn on_disk(world: &World, check: &OnDisk) -> Result<()> {
    let path = world.dir.join(&check.path);
    let bytes = std::fs::read(&path).map_err(io_at(&path))?;
    let held = match &check.want {
        Want::Bytes(want) => bytes == *want,
        Want::Lines(want) => {
            let text = String::from_utf8_lossy(&bytes);
            want.iter().all(|w| text.lines().any(|l| l == w))
        }
    };
    if held {
        return Ok(());
    }
    let found = match &check.want {
        Want::Bytes(want) => format!(
            "{} bytes that are not the {} bytes expected",
            bytes.len(),
            want.len()
        ),
        Want::Lines(want) => format!(
            "{:?}, expected the lines {want:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    Err(Error::Check(format!(
        "{}: expected \"{}\"; found {found}",
        check.path, check.says
    )))
}
