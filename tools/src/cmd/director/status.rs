//! `ferry director status`: the Director root's version, expiry, keys and thresholds; exit 3
//! when the root (signed offline) is inside its signing window.

use crate::error::{io_at, Result};
use ferry_core::expiry::{RoleStatus, Signing};
use ferry_core::{Clock, SystemClock};
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry director status --config director/director.toml          # exit 3: root ceremony due
  ferry director status --config director/director.toml --json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let now = SystemClock.now();
    let (config, store) = super::open_store(&args.config)?;
    let root = ferry_director::root::latest_root(store.as_ref(), now)?;
    let sign_before =
        chrono::Duration::from_std(config.expiry.sign_before).unwrap_or(chrono::Duration::days(30));
    let ceremony = format!(
        "ferry director root propose --config {} --out root-proposal.json",
        args.config.display()
    );
    let mut roles = vec![RoleStatus::new(
        "root",
        &root,
        root.version,
        root.expires.0,
        Signing::Offline,
        Some(ceremony),
        now,
        sign_before,
    )];
    // The online roles are signed per vehicle; what matters here is that a fresh one lasts
    // its configured lifetime.
    for (role, lifetime) in [
        ("targets", config.lifetimes.targets),
        ("snapshot", config.lifetimes.snapshot),
        ("timestamp", config.lifetimes.timestamp),
    ] {
        let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::zero());
        roles.push(RoleStatus::new(
            role,
            &root,
            root.version,
            now + lifetime,
            Signing::Online,
            None,
            now,
            sign_before,
        ));
    }
    // PURE-2: the offline-update roles, when the root has them; their keys are online when
    // `[keys] offline_update` holds them, and the latest snapshot says how long bundles last.
    let snapshot = match root.has_offline_roles() {
        true => store.latest_offline_snapshot()?,
        false => None,
    };
    if snapshot.is_some() {
        let keys = config.offline_update_keys()?;
        let (version, expires) = match &snapshot {
            Some((v, bytes)) => (
                *v,
                serde_json::from_slice::<serde_json::Value>(bytes)
                    .ok()
                    .and_then(|d| d["signed"]["expires"].as_str().map(str::to_owned))
                    .and_then(|e| chrono::DateTime::parse_from_rfc3339(&e).ok())
                    .map_or(now, |t| t.with_timezone(&chrono::Utc)),
            ),
            None => (0, now),
        };
        for role in ferry_core::metadata::OFFLINE_ROLES {
            let signing = match root.roles.get(role) {
                Some(r)
                    if keys
                        .iter()
                        .filter(|k| r.keyids.contains(k.key_id()))
                        .count()
                        >= r.threshold as usize =>
                {
                    Signing::Online
                }
                _ => Signing::Offline,
            };
            roles.push(RoleStatus::new(
                role,
                &root,
                version,
                expires,
                signing,
                Some("ferry admin bundle create".into()),
                now,
                sign_before,
            ));
        }
    }
    for (version, path) in ferry_director::daemon::root_files(&config.roots_dir)? {
        if version > root.version {
            std::fs::metadata(&path).map_err(io_at(&path))?;
            eprintln!(
                "root v{version} waits in {} and is imported at the Director's next start",
                path.display()
            );
        }
    }
    crate::cmd::expiry_status::print_with(
        "Director (online roles: per vehicle, a fresh signature lasts until the expiry shown)",
        &[("database", store.backend())],
        &roles,
        args.json,
    )
}
