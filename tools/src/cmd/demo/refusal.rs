//! The demo's step 6: a target whose depends no ECU meets (`rootfs-image.cuda.version` =
//! `11.8`) is refused before installation, by the vehicle on its own and by the Director.
//!
//! The Director refuses such an assignment outright, so to show the vehicle's own check the
//! target is assigned while its Image repository entry has no depends, and its supplier
//! then re-signs it with the depends (same bytes: the Director's hashes still match). The
//! vehicle trusts the Image repository's metadata for what an image needs.

use super::domains::{self, CUDA_KEY, CUDA_VERSION};
use super::story::Story;
use super::summary::Refusal;
use crate::error::{Error, Result};
use crate::world::World;
use std::collections::BTreeMap;

/// Mender's wording, which every refusal must carry.
const MISSING: &str = "Missing 'rootfs-image.cuda.version' in provides, required by target depends";
const NOT_MODIFIED: &str = "System not modified";

fn ecu_state(world: &World, serial: &str) -> Result<serde_json::Value> {
    let status = world.vehicle_status()?;
    status["ecus"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["serial"] == serial))
        .map(|e| e["status"].clone())
        .ok_or_else(|| Error::Check(format!("ferry primary status: expected ECU {serial}")))
}

fn has_wording(text: &str) -> bool {
    text.contains(MISSING) && text.contains(NOT_MODIFIED)
}

pub fn run(world: &World, story: &mut Story) -> Result<Refusal> {
    story.step(&format!(
        "A target that depends on {CUDA_KEY} = {CUDA_VERSION}"
    ));
    let (ecu, plain) = domains::needs_cuda(false);
    let name = plain.name.clone();
    story.busy("publishing and assigning it");
    world.publish(&[plain])?;
    world.assign(&[(ecu, &name)])?;
    story.note(&format!(
        "{name} for {ecu} was assigned while its Image repository entry had no depends;"
    ));
    let (_, strict) = domains::needs_cuda(true);
    world.publish(&[strict])?;
    story.note(&format!(
        "its supplier then re-signed it with depends {CUDA_KEY}={CUDA_VERSION} (same bytes)."
    ));

    let before = ecu_state(world, ecu)?;
    story.busy("cycle: ferry primary check");
    let cycle = world.check("refusal")?;
    story.done();
    let reason = cycle.report["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // `ferry primary check` exits non-zero and says why; the reason is what matters here.
    if cycle.success || !has_wording(&reason) {
        return Err(Error::Check(format!(
            "refusal: expected the cycle refused with \"{MISSING}. {NOT_MODIFIED}.\", got {} \
             (see logs/primary-refusal.log)",
            cycle.report
        )));
    }
    story.refused(&format!("the Primary refused it before download: {reason}"));

    let log = world.dir.join("logs/primary-refusal.log");
    let text = std::fs::read_to_string(&log).map_err(crate::error::io_at(&log))?;
    if text.contains("download started") {
        return Err(Error::Check(format!(
            "refusal: expected no download in {}, found one",
            log.display()
        )));
    }
    story.ok("nothing was downloaded (logs/primary-refusal.log)");
    let after = ecu_state(world, ecu)?;
    if before["installed"] != after["installed"] || before["provides"] != after["provides"] {
        return Err(Error::Check(format!(
            "refusal: expected {ecu} unchanged, it went from {before} to {after}"
        )));
    }
    story.ok(&format!(
        "{NOT_MODIFIED}: {ecu} still runs {}, its provides unchanged",
        after["installed"]["target"]
            .as_str()
            .unwrap_or("its factory image")
    ));

    // The vehicle's manifest carries the refusal, in the report of the ECU the target was for.
    let view = world.director_status()?;
    let heard = view["vehicle"]["ecus"].as_array().and_then(|ecus| {
        ecus.iter().find_map(|e| {
            let last = &e["reported"]["last_install"];
            let detail = last["detail"].as_str().unwrap_or_default();
            (last["target"] == name.as_str() && last["result"] == "failure" && has_wording(detail))
                .then(|| e["serial"].as_str().unwrap_or_default().to_owned())
        })
    });
    let Some(reporter) = heard else {
        return Err(Error::Check(format!(
            "refusal: expected an ECU report to the Director naming {name} failed with              \"{MISSING}\", got {}",
            view["vehicle"]["ecus"]
        )));
    };
    story.ok(&format!(
        "the Director heard it in the signed vehicle manifest ({reporter}: {name} failure)"
    ));
    world.cancel_assignments()?;
    story.note("the operator cancels the assignment and tries it again:");

    story.busy("assigning it again");
    let director_reason = match world.assign(&[(ecu, &name)]) {
        Err(Error::Admin {
            reason,
            status: Some(_),
            ..
        }) if has_wording(&reason) => reason,
        other => {
            return Err(Error::Check(format!(
                "refusal: expected the Director to refuse a new assignment of {name} with \
                 \"{MISSING}\", got {other:?}"
            )))
        }
    };
    story.done();
    story.refused(&format!(
        "a new assignment is refused by the Director too: {director_reason}"
    ));
    Ok(Refusal {
        target: name,
        ecu: ecu.to_owned(),
        depends: BTreeMap::from([(CUDA_KEY.to_owned(), CUDA_VERSION.to_owned())]),
        refused_by: "primary".into(),
        reason,
        director_reason,
    })
}
