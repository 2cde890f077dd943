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

use super::python;
use crate::error::{io_at, Error, Result};
use chrono::Utc;
use ferry_core::metadata::uptane::{Domain, ImageCustom};
use ferry_core::metadata::{hashes_of, TargetFile};
use ferry_core::{find_target, TrustedSet};
use ferry_image_repo::{init, InitOptions, Repository, TargetOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        println!(
            "{}",
            serde_json::to_string_pretty(&results.to_json(&args, &py, &work))
                .map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        results.print(&args, &py, &work);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------- run

struct Results {
    build_ferry: Duration,
    build_ferry_phases: Phases,
    build_python: Duration,
    publish_ferry: Vec<Duration>,
    publish_python: Vec<Duration>,
    /// Median time of each step of ferry's add-and-publish.
    publish_steps: Phases,
    /// What one ferry publish wrote, e.g. "bins-3f2 v2, snapshot v2, timestamp v2".
    publish_wrote: String,
    verify_ferry: Vec<Duration>,
    verify_python: Vec<Duration>,
    /// The target looked up in (b).
    lookup: String,
    /// (file as a client fetches it, bytes) for ferry and for the flat repository.
    bytes_ferry: Vec<(String, u64)>,
    bytes_flat: Vec<(String, u64)>,
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
    let (mut repo, _) = init(&ferry_dir, Utc::now(), &InitOptions::default())?;
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
        let mut repo = Repository::open(&ferry_dir, Utc::now())?;
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
    let mut set = TrustedSet::new(&root, Utc::now())?;
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

// --------------------------------------------------------------------------------- report

fn median(times: &[Duration]) -> f64 {
    let mut s: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn total(bytes: &[(String, u64)]) -> u64 {
    bytes.iter().map(|(_, b)| b).sum()
}

impl Results {
    fn ratios(&self) -> (f64, f64, f64) {
        (
            median(&self.publish_ferry) / median(&self.publish_python),
            median(&self.verify_ferry) / median(&self.verify_python),
            total(&self.bytes_ferry) as f64 / total(&self.bytes_flat) as f64,
        )
    }

    fn to_json(&self, args: &Args, py: &Path, work: &WorkDir) -> serde_json::Value {
        let (publish, verify, bytes) = self.ratios();
        let list = |t: &[Duration]| t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
        let files = |b: &[(String, u64)]| {
            let mut m: serde_json::Map<String, serde_json::Value> =
                b.iter().map(|(n, s)| (n.clone(), json!(s))).collect();
            m.insert("total".into(), json!(total(b)));
            m
        };
        json!({
            "targets": args.targets,
            "bins": args.bins,
            "runs": args.runs,
            "python": py,
            "python_tuf": python::TUF_VERSION,
            "keytype": "ed25519",
            "work_dir": work.kept().then_some(&work.path),
            "build_seconds": {
                "ferry": self.build_ferry.as_secs_f64(),
                "ferry_phases": self.build_ferry_phases.to_json(),
                "python_flat": self.build_python.as_secs_f64(),
            },
            "add_and_publish": {
                "ferry_seconds": median(&self.publish_ferry),
                "python_seconds": median(&self.publish_python),
                "ratio": publish,
                "goal": GOAL_PUBLISH,
                "ok": publish <= GOAL_PUBLISH,
                "ferry_runs": list(&self.publish_ferry),
                "python_runs": list(&self.publish_python),
                "ferry_wrote": self.publish_wrote,
                "ferry_steps_seconds": self.publish_steps.to_json(),
            },
            "verify_one_target": {
                "target": self.lookup,
                "ferry_seconds": median(&self.verify_ferry),
                "python_seconds": median(&self.verify_python),
                "ratio": verify,
                "goal": GOAL_VERIFY,
                "ok": verify <= GOAL_VERIFY,
                "ferry_runs": list(&self.verify_ferry),
                "python_runs": list(&self.verify_python),
            },
            "client_bytes": {
                "ferry": files(&self.bytes_ferry),
                "flat": files(&self.bytes_flat),
                "ratio": bytes,
            },
        })
    }

    fn print(&self, args: &Args, py: &Path, work: &WorkDir) {
        let (publish, verify, bytes) = self.ratios();
        let verdict = |ratio: f64, goal: f64| if ratio <= goal { "ok" } else { "MISSED" };
        let bin = self
            .bytes_ferry
            .last()
            .map_or("its bin", |(n, _)| n.as_str());
        println!(
            "ferry bench repo: {} targets; ferry with {} hashed bins, python-tuf {} ({}) with \
             one flat targets.json; ed25519 keys; median of {} run(s)",
            group(args.targets),
            group(args.bins),
            python::TUF_VERSION,
            py.display(),
            args.runs
        );
        println!(
            "setup (untimed, side by side): ferry repository built in {} ({}), python-tuf \
             flat repository in {}",
            secs(self.build_ferry),
            self.build_ferry_phases.describe(),
            secs(self.build_python)
        );
        println!();
        println!("(a) add one target and publish");
        println!(
            "    ferry       {:>10}  Repository::open + add_target + publish, in-process ({})",
            secs_f(median(&self.publish_ferry)),
            self.publish_wrote
        );
        println!(
            "                            median of each step: {}",
            self.publish_steps.describe()
        );
        println!(
            "    python-tuf  {:>10}  load targets.json, add the TargetFile, re-sign and write \
             targets, snapshot, timestamp",
            secs_f(median(&self.publish_python))
        );
        println!(
            "    ratio       {:>10.4}  goal <= {GOAL_PUBLISH}: {}",
            publish,
            verdict(publish, GOAL_PUBLISH)
        );
        println!();
        println!(
            "(b) client verification of the metadata for {}",
            self.lookup
        );
        println!(
            "    ferry       {:>10}  TrustedSet: root, timestamp, snapshot, targets, {bin}",
            secs_f(median(&self.verify_ferry))
        );
        println!(
            "    python-tuf  {:>10}  TrustedMetadataSet: root, timestamp, snapshot, targets \
             ({} entries)",
            secs_f(median(&self.verify_python)),
            group(args.targets + args.runs)
        );
        println!(
            "    ratio       {:>10.4}  goal <= {GOAL_VERIFY}: {}",
            verify,
            verdict(verify, GOAL_VERIFY)
        );
        println!();
        println!("metadata bytes a client fetches for one target");
        for (label, files) in [("ferry", &self.bytes_ferry), ("flat", &self.bytes_flat)] {
            let parts: Vec<String> = files
                .iter()
                .map(|(n, b)| format!("{n} {}", group(*b)))
                .collect();
            println!(
                "    {label:<10}  {:>12}  = {}",
                group(total(files)),
                parts.join(" + ")
            );
        }
        println!("    ratio       {bytes:>12.5}");
        if work.kept() {
            println!();
            println!("repositories kept in {}", work.path.display());
        }
    }
}

/// `1234567` → `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let first = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..first.min(digits.len())].to_owned();
    let mut rest = &digits[first.min(digits.len())..];
    while !rest.is_empty() {
        out.push(',');
        out.push_str(&rest[..3]);
        rest = &rest[3..];
    }
    out
}

fn secs(d: Duration) -> String {
    secs_f(d.as_secs_f64())
}

fn secs_f(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

// ------------------------------------------------------------------------------- helpers

/// Named consecutive steps and how long each took.
#[derive(Debug, Default)]
struct Phases {
    steps: Vec<(&'static str, Duration)>,
    last: Option<Instant>,
}

impl Phases {
    /// Begin the first step now.
    fn start() -> Phases {
        Phases {
            steps: Vec::new(),
            last: Some(Instant::now()),
        }
    }

    /// End the current step (begun at the previous lap).
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        let since = self.last.unwrap_or(now);
        self.steps.push((name, now - since));
        self.last = Some(now);
    }

    /// Step by step, the median over several runs of the same steps.
    fn medians(runs: &[Phases]) -> Phases {
        let names = runs.first().map_or(Vec::new(), |r| {
            r.steps.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        });
        let steps = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let times: Vec<Duration> = runs
                    .iter()
                    .filter_map(|r| Some(r.steps.get(i)?.1))
                    .collect();
                (*name, Duration::from_secs_f64(median(&times)))
            })
            .collect();
        Phases { steps, last: None }
    }

    fn describe(&self) -> String {
        self.steps
            .iter()
            .map(|(n, d)| format!("{n} {}", secs(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn to_json(&self) -> serde_json::Value {
        self.steps
            .iter()
            .map(|(n, d)| ((*n).to_owned(), json!(d.as_secs_f64())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A line on stderr above the spinner (also when the spinner is hidden).
fn say(bar: &ProgressBar, line: &str) {
    bar.suspend(|| eprintln!("{line}"));
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let file = std::fs::File::create(path).map_err(io_at(path))?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, value).map_err(|e| io_at(path)(e.into()))?;
    out.flush().map_err(io_at(path))
}

fn seconds_of(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|s| s.is_finite() && *s >= 0.0)
}

fn durations(v: &serde_json::Value) -> Option<Vec<Duration>> {
    v.as_array()?
        .iter()
        .map(|s| seconds_of(s).map(Duration::from_secs_f64))
        .collect()
}

fn bad_output(py: &Path, out: &serde_json::Value) -> Error {
    python::failure(py, format!("unexpected output from bench_repo.py: {out}"))
}

/// A python run of bench_repo.py; killed if dropped before it finished (on an error).
struct Background {
    child: Option<Child>,
}

impl Background {
    fn spawn(cmd: &mut Command) -> Result<Background> {
        let program = PathBuf::from(cmd.get_program());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_at(program))?;
        Ok(Background { child: Some(child) })
    }

    /// Wait for it; its stdout's last line is one JSON object.
    fn finish(mut self, py: &Path, what: &str) -> Result<serde_json::Value> {
        let child = self
            .child
            .take()
            .ok_or_else(|| python::failure(py, "bench_repo.py is not running".into()))?;
        let out = child.wait_with_output().map_err(io_at(py))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(python::failure(
                py,
                format!(
                    "bench_repo.py {what} failed ({}):\n{stdout}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
            ));
        }
        stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                python::failure(
                    py,
                    format!("bench_repo.py {what} printed no JSON result: {stdout}"),
                )
            })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bench's working directory: the one given (kept), or a fresh temporary one (removed
/// when the bench ends, also on an error).
struct WorkDir {
    path: PathBuf,
    temporary: bool,
}

impl WorkDir {
    fn new(given: Option<&Path>) -> Result<WorkDir> {
        let (path, temporary) = match given {
            Some(dir) => (dir.to_owned(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!("ferry-bench-repo-{}-{nanos}", std::process::id());
                (std::env::temp_dir().join(name), true)
            }
        };
        for part in ["ferry", "flat"] {
            if path.join(part).exists() {
                return Err(Error::Usage(format!(
                    "{} already holds a bench run ({part}/); pick an empty --work-dir",
                    path.display()
                )));
            }
        }
        std::fs::create_dir_all(&path).map_err(io_at(&path))?;
        let path = std::path::absolute(&path).map_err(io_at(&path))?;
        Ok(WorkDir { path, temporary })
    }

    fn kept(&self) -> bool {
        !self.temporary
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (73_590, "73,590"),
            (100_000, "100,000"),
            (37_904_563, "37,904,563"),
        ] {
            assert_eq!(group(n), text);
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(median(&ms(&[30, 10, 20])), 0.02);
        assert_eq!(median(&ms(&[40, 10, 20, 30])), 0.025);
    }

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
