//! `ferry bench repo`: a large Image repository with TAP 15 hashed bins against python-tuf
//! 7.0.1 on a flat repository holding the same targets, measured in the same run.
//!
//! (a) Add one target and publish. Ferry: `Repository::open` + `add_target` + `publish`
//!     in-process: exactly what `ferry repo add-target` followed by `ferry repo publish` does,
//!     without the process start-ups. It re-signs one bin, snapshot and timestamp. python-tuf:
//!     what a repository tool built on `tuf.api.metadata` must do on a flat repository: load
//!     its keys and targets.json (every target), add the TargetFile, bump, re-sign and write
//!     targets, snapshot and timestamp.
//! (b) Client verification of the metadata one target needs, from local files. Ferry:
//!     `TrustedSet` root → timestamp → snapshot → `find_target` (targets, then one bin).
//!     python-tuf: ngclient's `TrustedMetadataSet` root → timestamp → snapshot → targets (every
//!     target), then the lookup; timed inside python.
//!
//! Both sides use ed25519 keys, consistent snapshots, compact JSON and fsync every file they
//! write. The setup (building both repositories, untimed) runs ferry and python in parallel;
//! every timed run is serial.

mod background;
mod results;
mod work_dir;

use super::python;
use super::report::{print_json, say, secs, secs_f, spinner, Phases};
use crate::error::{io_at, Error, Result};
use background::{bad_output, durations, seconds_of, write_json, Background};
use ferry_core::metadata::uptane::{Domain, ImageCustom};
use ferry_core::metadata::{hashes_of, TargetFile};
use ferry_core::{find_target, TrustedSet};
use ferry_core::{Clock, SystemClock};
use ferry_image_repo::{init, InitOptions, Repository, TargetOptions};
use results::Results;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use work_dir::WorkDir;

const EXAMPLE: &str = "Examples:
  ferry bench repo                                  # 100,000 targets, 1,024 bins, 5 runs
  ferry bench repo --targets 10000 --bins 64 --runs 3 --json
  ferry bench repo --python ~/venvs/tuf/bin/python --work-dir /tmp/ferry-bench

(a) add one target and publish: ferry runs Repository::open + add_target + publish in-process
    (what `ferry repo add-target` + `ferry repo publish` do); python-tuf 7.0.1 loads the flat
    targets.json, adds the TargetFile, re-signs and writes targets, snapshot and timestamp.
    Goal: ferry / python <= 0.1.
(b) client verification of the metadata for one target, from local files: ferry's TrustedSet
    (root, timestamp, snapshot, targets, one bin) vs python-tuf ngclient's TrustedMetadataSet
    (root, timestamp, snapshot, the whole targets.json). Goal: ferry / python <= 0.2.
Each time is the median of --runs. Without --python, a virtualenv with python-tuf 7.0.1 is
created on first use under $FERRY_BENCH_DIR, else ./target/bench-venv.";

/// Goal for (a): ferry's add-and-publish time over python-tuf's.
const GOAL_PUBLISH: f64 = 0.1;
/// Goal for (b): ferry's client verification time over python-tuf's.
const GOAL_VERIFY: f64 = 0.2;

/// The python side, written into the work directory at run time.
const SCRIPT: &str = include_str!("bench_repo.py");

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Targets in the repository.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    targets: u64,
    /// Hashed bins of the ferry repository (a power of two from 2 to 65536).
    #[arg(long, default_value_t = 1024)]
    bins: u64,
    /// Repetitions of each timed operation; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Where to build the repositories (kept afterwards; must not hold an earlier bench).
    /// Default: a fresh directory under the system temp dir, removed at the end.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// A python interpreter with python-tuf 7.0.1 and cryptography (default: the bench's own
    /// virtualenv, created on first use).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if !args.bins.is_power_of_two() || !(2..=1 << 16).contains(&args.bins) {
        return Err(Error::Usage(format!(
            "--bins {} must be a power of two from 2 to 65536",
            args.bins
        )));
    }
    let py = python::interpreter(args.python.as_deref())?;
    let work = WorkDir::new(args.work_dir.as_deref())?;
    let results = bench(&args, &py, &work.path)?;
    if args.json {
        print_json(&results.to_json(&args, &py, &work))?;
    } else {
        results.print(&args, &py, &work);
    }
    Ok(())
}

fn bench(args: &Args, py: &Path, work: &Path) -> Result<Results> {
    let ferry_dir = work.join("ferry");
    let flat_dir = work.join("flat");
    let script = work.join("bench_repo.py");
    std::fs::write(&script, SCRIPT).map_err(io_at(&script))?;

    // The same catalogue for both repositories.
    let bar = spinner(&format!("generating {} targets", args.targets));
    let catalogue = catalogue(args.targets);
    let lookup = catalogue[catalogue.len() / 2].0.clone();
    let catalogue_json = work.join("catalogue.json");
    write_json(
        &catalogue_json,
        &catalogue
            .iter()
            .map(|(n, t)| (n.as_str(), t))
            .collect::<BTreeMap<_, _>>(),
    )?;

    // Setup, untimed: python builds its flat repository while ferry builds the binned one.
    let python_build = Background::spawn(
        Command::new(py)
            .arg(&script)
            .arg("build")
            .arg(&flat_dir)
            .arg(&catalogue_json),
    )?;
    let start = Instant::now();
    let mut phases = Phases::start();
    bar.set_message("ferry: init (python-tuf builds its flat repository meanwhile)");
    let (mut repo, _) = init(&ferry_dir, SystemClock.now(), &InitOptions::default())?;
    phases.lap("init");
    bar.set_message(format!("ferry: staging {} hashed bins", args.bins));
    repo.make_bins(args.bins, None)?;
    phases.lap("make_bins");
    bar.set_message(format!(
        "ferry: staging {} targets in their bins",
        args.targets
    ));
    repo.insert_targets(catalogue)?;
    phases.lap("insert_targets");
    bar.set_message(format!(
        "ferry: signing and publishing targets and {} bins",
        args.bins
    ));
    repo.publish()?;
    phases.lap("publish");
    drop(repo);
    let build_ferry = start.elapsed();
    say(
        &bar,
        &format!(
            "built the ferry repository in {} ({})",
            secs(build_ferry),
            phases.describe()
        ),
    );
    bar.set_message(format!(
        "python-tuf: building the flat repository ({} targets in targets.json)",
        args.targets
    ));
    let built = python_build.finish(py, "build")?;
    let build_python = seconds_of(&built["seconds"]).ok_or_else(|| bad_output(py, &built))?;
    say(
        &bar,
        &format!(
            "built the python-tuf flat repository in {}",
            secs_f(build_python)
        ),
    );

    // New files, one per run, added by both sides under the same names.
    let new_dir = work.join("new");
    std::fs::create_dir_all(&new_dir).map_err(io_at(&new_dir))?;
    let mut new_files = Vec::new();
    for run in 0..args.runs {
        let path = new_dir.join(format!("new-{run}.bin"));
        let content: Vec<u8> = format!("ferry bench new target {run}\n")
            .bytes()
            .cycle()
            .take(4096)
            .collect();
        std::fs::write(&path, content).map_err(io_at(&path))?;
        new_files.push((format!("bench/new-{run}.bin"), path));
    }

    // (a) ferry.
    bar.set_message("(a) ferry: open + add_target + publish");
    let mut publish_ferry = Vec::new();
    let mut publish_wrote = String::new();
    let mut publish_steps = Vec::new();
    let mut new_targets = Vec::new();
    for (name, path) in &new_files {
        let options = TargetOptions {
            name: Some(name.clone()),
            hardware_ids: vec!["bench-hw".into()],
            version: Some("1.0".into()),
            ..Default::default()
        };
        let start = Instant::now();
        let mut steps = Phases::start();
        let mut repo = Repository::open(&ferry_dir, SystemClock.now())?;
        steps.lap("open");
        let (_, target) = repo.add_target(path, &options, &mut |_| {})?;
        steps.lap("add_target");
        let report = repo.publish()?;
        steps.lap("publish");
        publish_ferry.push(start.elapsed());
        publish_steps.push(steps);
        publish_wrote = report
            .roles
            .iter()
            .map(|(r, v)| format!("{r} v{v}"))
            .chain(report.snapshot.map(|v| format!("snapshot v{v}")))
            .chain(report.timestamp.map(|v| format!("timestamp v{v}")))
            .collect::<Vec<_>>()
            .join(", ");
        new_targets.push(json!({"name": name, "path": path, "custom": target.custom}));
    }

    // (b) ferry.
    bar.set_message("(b) ferry: client verification for one target");
    let mut verify_ferry = Vec::new();
    let mut bytes_ferry = Vec::new();
    for _ in 0..args.runs {
        let start = Instant::now();
        bytes_ferry = ferry_verify(&ferry_dir.join("metadata"), &lookup)?;
        verify_ferry.push(start.elapsed());
    }

    // (a) python.
    bar.set_message("(a) python-tuf: load targets.json, add, re-sign, write");
    let new_json = work.join("new-targets.json");
    write_json(&new_json, &new_targets)?;
    let out = Background::spawn(
        Command::new(py)
            .arg(&script)
            .arg("publish")
            .arg(&flat_dir)
            .arg(&new_json),
    )?
    .finish(py, "publish")?;
    let publish_python = durations(&out["seconds"]).ok_or_else(|| bad_output(py, &out))?;

    // (b) python.
    bar.set_message("(b) python-tuf: TrustedMetadataSet for one target");
    let out = Background::spawn(
        Command::new(py)
            .arg(&script)
            .arg("verify")
            .arg(&flat_dir)
            .arg(&lookup)
            .arg(args.runs.to_string()),
    )?
    .finish(py, "verify")?;
    let verify_python = durations(&out["seconds"]).ok_or_else(|| bad_output(py, &out))?;
    let bytes_flat = ["root", "timestamp", "snapshot", "targets"]
        .iter()
        .map(|role| Some((role.to_string(), out["bytes"][role].as_u64()?)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad_output(py, &out))?;
    bar.finish_and_clear();

    Ok(Results {
        build_ferry,
        build_ferry_phases: phases,
        build_python: Duration::from_secs_f64(build_python),
        publish_steps: Phases::medians(&publish_steps),
        publish_ferry,
        publish_python,
        publish_wrote,
        verify_ferry,
        verify_python,
        lookup,
        bytes_ferry,
        bytes_flat,
    })
}

/// `count` Uptane image targets spread over 64 ECU types, with sha256 and sha512 hashes (the
/// files themselves are not needed for a metadata benchmark).
fn catalogue(count: u64) -> Vec<(String, TargetFile)> {
    (0..count)
        .map(|i| {
            let ecu = i % 64;
            let custom = ImageCustom {
                clears_provides: None,
                depends: BTreeMap::new(),
                domain: Some(Domain::App),
                hardware_ids: vec![format!("ecu-{ecu:02}")],
                name: Some(format!("app-{i:06}")),
                provides: BTreeMap::new(),
                release_counter: 1,
                version: Some("1.0".into()),
                extra: BTreeMap::new(),
            };
            let target = TargetFile {
                custom: serde_json::to_value(custom).ok(),
                hashes: hashes_of(format!("ferry bench target {i}").as_bytes()),
                length: 100_000 + i,
                extra: BTreeMap::new(),
            };
            (format!("ecu-{ecu:02}/app-{i:06}-1.0.bin"), target)
        })
        .collect()
}

/// A vehicle's verification of the metadata for `target`, from the files in `metadata`:
/// trusted 1.root.json, the root walk, timestamp, snapshot, then the roles on the target's
/// delegation path (targets and its bin). Returns each file read with its size.
fn ferry_verify(metadata: &Path, target: &str) -> Result<Vec<(String, u64)>> {
    let read = |name: &str| {
        let path = metadata.join(name);
        std::fs::read(&path).map_err(io_at(path))
    };
    let mut sizes = Vec::new();
    let root = read("1.root.json")?;
    sizes.push(("root".to_owned(), root.len() as u64));
    let mut set = TrustedSet::new(&root, SystemClock.now())?;
    loop {
        let next = format!("{}.root.json", set.root().version + 1);
        if !metadata.join(&next).exists() {
            break;
        }
        let bytes = read(&next)?;
        sizes[0].1 += bytes.len() as u64;
        set.update_root(&bytes)?;
    }
    let bytes = read("timestamp.json")?;
    sizes.push(("timestamp".to_owned(), bytes.len() as u64));
    set.update_timestamp(&bytes)?;
    let version = set
        .timestamp()
        .ok_or_else(|| Error::Usage("no trusted timestamp".into()))?
        .snapshot_meta()?
        .version;
    let bytes = read(&format!("{version}.snapshot.json"))?;
    sizes.push(("snapshot".to_owned(), bytes.len() as u64));
    set.update_snapshot(&bytes, false)?;
    let found = find_target(&mut set, target, &mut |set: &mut TrustedSet,
                                                    role: &str,
                                                    parent: &str|
     -> Result<()> {
        let version = set
            .snapshot()
            .and_then(|s| s.role_meta(role))
            .ok_or_else(|| ferry_core::Error::NotInSnapshot { role: role.into() })?
            .version;
        let bytes = read(&format!(
            "{version}.{}.json",
            ferry_image_repo::layout::quote(role)
        ))?;
        sizes.push((role.to_owned(), bytes.len() as u64));
        set.update_targets(&bytes, role, parent)?;
        Ok(())
    })?;
    if found.is_none() {
        return Err(Error::Usage(format!(
            "the bench target {target} is not in the ferry repository"
        )));
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_deterministic_uptane_targets() {
        let a = catalogue(3);
        assert_eq!(a, catalogue(3));
        assert_eq!(a[1].0, "ecu-01/app-000001-1.0.bin");
        let custom = a[1].1.image_custom(&a[1].0).expect("image custom");
        assert_eq!(custom.hardware_ids, ["ecu-01"]);
        assert_eq!(a[1].1.hashes.len(), 2);
    }
}
