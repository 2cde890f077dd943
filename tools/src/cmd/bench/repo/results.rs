//! `ferry bench repo`'s results: ratios to python-tuf, the `--json` object and the printed
//! report.

use super::work_dir::WorkDir;
use super::{Args, GOAL_PUBLISH, GOAL_VERIFY};
use crate::cmd::bench::python;
use crate::cmd::bench::report::{group, median, ratio, secs, secs_f, Phases};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

pub(super) struct Results {
    pub(super) build_ferry: Duration,
    pub(super) build_ferry_phases: Phases,
    pub(super) build_python: Duration,
    pub(super) publish_ferry: Vec<Duration>,
    pub(super) publish_python: Vec<Duration>,
    /// Median time of each step of ferry's add-and-publish.
    pub(super) publish_steps: Phases,
    /// What one ferry publish wrote, e.g. "bins-3f2 v2, snapshot v2, timestamp v2".
    pub(super) publish_wrote: String,
    pub(super) verify_ferry: Vec<Duration>,
    pub(super) verify_python: Vec<Duration>,
    /// The target looked up in (b).
    pub(super) lookup: String,
    /// (file as a client fetches it, bytes) for ferry and for the flat repository.
    pub(super) bytes_ferry: Vec<(String, u64)>,
    pub(super) bytes_flat: Vec<(String, u64)>,
}

fn total(bytes: &[(String, u64)]) -> u64 {
    bytes.iter().map(|(_, b)| b).sum()
}

impl Results {
    fn ratios(&self) -> (f64, f64, f64) {
        (
            ratio(median(&self.publish_ferry), median(&self.publish_python)),
            ratio(median(&self.verify_ferry), median(&self.verify_python)),
            ratio(
                total(&self.bytes_ferry) as f64,
                total(&self.bytes_flat) as f64,
            ),
        )
    }

    pub(super) fn to_json(&self, args: &Args, py: &Path, work: &WorkDir) -> serde_json::Value {
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

    pub(super) fn print(&self, args: &Args, py: &Path, work: &WorkDir) {
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
