//! `ferry repo`: build, sign, delegate, rotate, refresh and serve an Image repository.

use crate::error::{Error, Result};
use clap::Subcommand;
use ferry_core::{Clock, SystemClock};
use ferry_image_repo::{PublishReport, Repository};
use std::path::Path;

mod add_target;
mod bins;
mod delegate;
mod from_mender;
mod init;
mod list;
mod publish;
mod refresh;
mod remove_target;
mod root;
mod rotate;
mod serve;
mod sign_role;
mod status;
mod targets;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository (root, targets, snapshot, timestamp; consistent snapshots).
    Init(init::Args),
    /// Hash a file, store it at its spec path and stage it with Uptane custom metadata.
    // Boxed: its many flags make it the largest variant by far.
    AddTarget(Box<add_target::Args>),
    /// Stage the removal of a target.
    RemoveTarget(remove_target::Args),
    /// List the targets (as staged).
    List(list::Args),
    /// Delegate paths to a supplier role signed by the supplier's own key.
    Delegate(delegate::Args),
    /// Sign a staged delegated role with a supplier key.
    SignRole(sign_role::Args),
    /// Split the catalogue into TAP 15 hashed bins signed by an online key.
    Bins(bins::Args),
    /// Sign and publish every staged role, then snapshot and timestamp.
    Publish(publish::Args),
    /// Re-sign online roles (timestamp, snapshot, bins) that expire soon. For cron/systemd.
    Refresh(refresh::Args),
    /// Replace a role's keys; the new root is signed by the old and new root keys.
    Rotate(rotate::Args),
    /// Every role's version, expiry, keys and threshold; exit 3 when an offline role needs a ceremony.
    Status(status::Args),
    /// Key ceremony for the root: propose the next root, import it once signed.
    #[command(subcommand)]
    Root(root::Command),
    /// Key ceremony for offline top-level targets: propose the staged changes, import them signed.
    #[command(subcommand)]
    Targets(targets::Command),
    /// Serve metadata/ and targets/ over HTTP (Range, gzip for metadata, ETag, cache headers).
    Serve(serve::Args),
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Init(a) => init::run(a),
        Command::AddTarget(a) => add_target::run(*a),
        Command::RemoveTarget(a) => remove_target::run(a),
        Command::List(a) => list::run(a),
        Command::Delegate(a) => delegate::run(a),
        Command::SignRole(a) => sign_role::run(a),
        Command::Bins(a) => bins::run(a),
        Command::Publish(a) => publish::run(a),
        Command::Refresh(a) => refresh::run(a),
        Command::Rotate(a) => rotate::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Root(c) => root::run(c),
        Command::Status(a) => status::run(a),
        Command::Targets(c) => targets::run(c),
    }
}

/// Open the repository at `dir`; new expiries count from the system clock.
fn open(dir: &Path) -> Result<Repository> {
    Ok(Repository::open(dir, SystemClock.now())?)
}

/// Print what a publish wrote, for a person or (`json`) a script.
fn print_report(report: &PublishReport, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).map_err(|e| Error::Usage(e.to_string()))?
        );
        return Ok(());
    }
    if report.roles.is_empty() && report.snapshot.is_none() && report.timestamp.is_none() {
        println!("nothing to publish");
    }
    for (role, version) in &report.roles {
        println!("published {role} v{version}");
    }
    if let Some(v) = report.snapshot {
        println!("published snapshot v{v}");
    }
    if let Some(v) = report.timestamp {
        println!("published timestamp v{v}");
    }
    Ok(())
}

/// What a ceremony import did.
fn print_import(report: &ferry_image_repo::ImportReport, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).map_err(|e| Error::Usage(e.to_string()))?
        );
        return Ok(());
    }
    println!("imported {} v{}", report.role, report.version);
    if let Some(next) = &report.waiting_for {
        println!("{next}");
        return Ok(());
    }
    print_report(&report.published, false)
}

/// `ROLE=VALUE` → (ROLE, VALUE).
fn role_pair(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected ROLE=VALUE, got {text:?}"))
}

fn duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("duration {text:?}: {e} (e.g. 1day, 12h, 3months)"))
}
