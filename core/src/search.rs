//! Finding a target: a pre-order depth-first walk of the delegation graph that loads only the
//! roles on the target's path, on demand (so a hashed-bin catalogue costs one bin per target).

use crate::metadata::TargetFile;
use crate::trusted::TrustedSet;

/// At most this many roles are visited for one target (TUF reference client's default).
pub const MAX_DELEGATIONS: usize = 32;

/// Where a target was found.
#[derive(Debug, Clone)]
pub struct FoundTarget {
    pub role: String,
    pub target: TargetFile,
}

/// Look `target` up, starting at top-level targets. `load(set, role, delegator)` is called for
/// each role on the path that is not yet in the trusted set; it must fetch the role's bytes and
/// pass them to [`TrustedSet::update_targets`]. A terminating delegation that matches ends the
/// search of its siblings.
pub fn find_target<E: From<crate::Error>>(
    set: &mut TrustedSet,
    target: &str,
    load: &mut dyn FnMut(&mut TrustedSet, &str, &str) -> std::result::Result<(), E>,
) -> std::result::Result<Option<FoundTarget>, E> {
    let mut to_visit: Vec<(String, String)> = vec![("targets".into(), "root".into())];
    let mut visited = std::collections::HashSet::new();
    while let Some((role, parent)) = to_visit.pop() {
        if visited.len() >= MAX_DELEGATIONS {
            break;
        }
        if visited.contains(&role) {
            continue;
        }
        if set.targets_via(&role, &parent)?.is_none() {
            load(set, &role, &parent)?;
        }
        let Some(meta) = set.targets_via(&role, &parent)? else {
            continue;
        };
        if let Some(found) = meta.targets.get(target) {
            return Ok(Some(FoundTarget {
                role,
                target: found.clone(),
            }));
        }
        let mut children = Vec::new();
        if let Some(delegations) = &meta.delegations {
            for (child, terminating) in delegations.roles_for_target(target) {
                children.push((child, role.clone()));
                if terminating {
                    to_visit.clear();
                    break;
                }
            }
        }
        visited.insert(role);
        to_visit.extend(children.into_iter().rev());
    }
    Ok(None)
}
