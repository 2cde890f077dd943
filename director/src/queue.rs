//! Per-ECU install queues. Uptane lets the Director's targets name at most one image per ECU
//! (the Primary refuses more), yet one assignment may give an ECU several images (an OS, then
//! the app that depends on it). So each ECU's active assignments form a queue: only its head
//! is signed into the vehicle's targets; the rest wait, pending, until the head is installed,
//! fails or is cancelled, and the vehicle is re-signed.

use crate::model::{Assignment, AssignmentStatus, EcuState};
use ferry_core::metadata::TargetFile;
use ferry_core::provides::{check_depends, merge_provides};
use std::collections::{BTreeMap, BTreeSet};

/// Each ECU's head: its in-flight assignment (it was served; taking it back mid-install would
/// leave the ECU and the Director disagreeing), else its first pending one by install order,
/// then id. Sorted by install order.
pub fn heads(active: &[Assignment]) -> Vec<&Assignment> {
    let mut head: BTreeMap<&str, &Assignment> = BTreeMap::new();
    for a in active.iter().filter(|a| a.status.is_active()) {
        let key = |a: &Assignment| (a.status != AssignmentStatus::InFlight, a.position, a.id);
        head.entry(a.ecu_serial.as_str())
            .and_modify(|h| {
                if key(a) < key(h) {
                    *h = a;
                }
            })
            .or_insert(a);
    }
    let mut heads: Vec<&Assignment> = head.into_values().collect();
    heads.sort_by_key(|a| (a.position, a.id));
    heads
}

/// Whether `a` waits behind another assignment of its ECU (pending and not its ECU's head).
pub fn is_queued(a: &Assignment, heads: &[&Assignment]) -> bool {
    a.status == AssignmentStatus::Pending && !heads.iter().any(|h| h.id == a.id)
}

/// `(target name, ECU serial)` pairs the heads of `active` put in the vehicle's targets.
pub fn head_pairs(active: &[Assignment]) -> BTreeSet<(String, String)> {
    heads(active)
        .into_iter()
        .map(|a| (a.target_name.clone(), a.ecu_serial.clone()))
        .collect()
}

/// `(target name, ECU serial)` pairs named by signed Director targets bytes.
pub fn served_pairs(bytes: &[u8]) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return pairs;
    };
    if let Some(targets) = doc["signed"]["targets"].as_object() {
        for (name, entry) in targets {
            if let Some(ecus) = entry["custom"]["ecuIdentifiers"].as_object() {
                for serial in ecus.keys() {
                    pairs.insert((name.clone(), serial.clone()));
                }
            }
        }
    }
    pairs
}

/// The ids of the `pending` assignments that signed Director targets `bytes` serve: those
/// are now in flight (an assignment added after the bytes were signed waits for the next
/// signing).
pub fn served_ids(pending: Vec<Assignment>, bytes: &[u8]) -> Vec<i64> {
    let served = served_pairs(bytes);
    pending
        .into_iter()
        .filter(|a| served.contains(&(a.target_name.clone(), a.ecu_serial.clone())))
        .map(|a| a.id)
        .collect()
}

/// One active assignment of an ECU, as a report is checked against it.
#[derive(Debug, Clone)]
pub struct Active {
    pub id: i64,
    pub position: i64,
    pub target_name: String,
    pub target: TargetFile,
    pub status: AssignmentStatus,
}

impl From<&Assignment> for Active {
    fn from(a: &Assignment) -> Active {
        Active {
            id: a.id,
            position: a.position,
            target_name: a.target_name.clone(),
            target: a.target.clone(),
            status: a.status,
        }
    }
}

/// An assignment a report moves out of the active set, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub id: i64,
    pub status: AssignmentStatus,
    pub detail: String,
}

/// What ECU `state` (just reported) does to its active assignments `active`:
/// - installed, when the ECU runs the target (name, length and hashes equal);
/// - failed, when it was in flight and the ECU's last install of that target failed (a
///   pending one is not failed by a report: the vehicle was not offered it, so a failure it
///   reports is from an earlier attempt);
/// - failed at once, when a head failed and a pending assignment queued behind it depends on
///   what no longer comes before it: served next, the ECU could only refuse it.
pub fn settle(state: &EcuState, active: &[Active]) -> Vec<Settled> {
    let mut queue: Vec<&Active> = active.iter().collect();
    queue.sort_by_key(|a| (a.position, a.id));
    let mut settled = Vec::new();
    let mut failed_head = None;
    let mut waiting = Vec::new();
    for a in queue {
        let last = state
            .last_install
            .as_ref()
            .filter(|l| l.target == a.target_name);
        if state.installed_image.is(&a.target_name, &a.target) {
            let detail = last.map_or_else(
                || "ECU reports the target installed".to_owned(),
                |l| l.detail.clone(),
            );
            settled.push(Settled {
                id: a.id,
                status: AssignmentStatus::Installed,
                detail,
            });
        } else if let Some(l) =
            last.filter(|l| l.failed() && a.status == AssignmentStatus::InFlight)
        {
            settled.push(Settled {
                id: a.id,
                status: AssignmentStatus::Failed,
                detail: format!("{}: {}", l.result, l.detail),
            });
            failed_head.get_or_insert(a);
        } else {
            waiting.push(a);
        }
    }
    let Some(head) = failed_head else {
        return settled;
    };
    let why = format!(
        "{} (assignment {}) before it in the ECU's queue failed",
        head.target_name, head.id
    );
    settled.extend(unmet_without(&why, &state.provides, &waiting));
    settled
}

/// The pending assignments of `queue` (what is left of an ECU's queue, in install order) that
/// can no longer install now that something before them will not (`why` says what): the
/// queue is replayed over what the ECU provides now, as planning did over what it provided
/// then, and whatever no longer finds its depends met is failed at once, so the queue moves
/// on to what can still install instead of serving what the ECU could only refuse.
pub fn unmet_without(
    why: &str,
    provides: &BTreeMap<String, String>,
    queue: &[&Active],
) -> Vec<Settled> {
    let mut queue = queue.to_vec();
    queue.sort_by_key(|a| (a.position, a.id));
    let mut provides = provides.clone();
    let mut failed = Vec::new();
    for a in queue {
        let Ok(custom) = a.target.image_custom(&a.target_name) else {
            continue;
        };
        match check_depends(&custom.depends, &provides) {
            Ok(()) => {
                provides = merge_provides(
                    &provides,
                    &custom.effective_clears(),
                    &custom.effective_provides(),
                );
            }
            Err(e) if a.status == AssignmentStatus::Pending => failed.push(Settled {
                id: a.id,
                status: AssignmentStatus::Failed,
                detail: format!("not offered: {why}, and {e}"),
            }),
            Err(_) => {}
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{Clock, SystemClock};

    fn assignment(id: i64, ecu: &str, position: i64, status: AssignmentStatus) -> Assignment {
        Assignment {
            id,
            vin: "V".into(),
            ecu_serial: ecu.into(),
            target_name: format!("t{id}"),
            target: TargetFile {
                custom: None,
                hashes: Default::default(),
                length: 1,
                extra: Default::default(),
            },
            position,
            status,
            detail: String::new(),
            campaign: None,
            created_at: SystemClock.now(),
            updated_at: SystemClock.now(),
        }
    }

    #[test]
    fn each_ecu_serves_its_in_flight_one_else_its_first_pending_one() {
        use AssignmentStatus::*;
        let all = [
            assignment(1, "a", 1, Installed),
            assignment(2, "a", 2, Pending),
            assignment(3, "a", 3, Pending),
            // Signed before queues existed: served, so it stays the head.
            assignment(4, "b", 4, Pending),
            assignment(5, "b", 5, InFlight),
            assignment(6, "c", 6, Cancelled),
        ];
        let heads = heads(&all);
        let ids: Vec<i64> = heads.iter().map(|a| a.id).collect();
        assert_eq!(ids, [2, 5]);
        let queued: Vec<i64> = all
            .iter()
            .filter(|a| is_queued(a, &heads))
            .map(|a| a.id)
            .collect();
        assert_eq!(queued, [3, 4]);
    }
}
