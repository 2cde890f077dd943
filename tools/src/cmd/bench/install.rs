//! `ferry bench install`: one update of a large image to a Secondary over loopback, end to
//! end through the real binaries, as a ratio to what the machine needs just to hash and to
//! durably copy the same bytes, measured in the same run.
//!
//! Timed: `ferry-primary --config primary.toml check`, which verifies the Director's and the
//! Image repository's metadata, downloads the image, verifies it, sends it to the Secondary
//! (`ferry-secondary`, full verification) which verifies and installs it. Baselines on the
//! image file: `openssl dgst -sha256` and `dd bs=4M conv=fdatasync`; the ratio is the
//! install time over the slower of the two. Peak RSS: ferry-primary's sampled every 20 ms
//! from /proc (VmHWM), ferry-secondary's VmHWM after the run. The primary's phases (metadata,
//! streaming to the ECUs, install and report) come from its log's timestamps.

pub(super) mod measure;
pub(super) mod procs;
pub(super) mod world;

use super::report::{
    host_steal, print_json, ratio, secs, spinner, steal_share, steal_since, Phases,
};
use crate::error::{Error, Result};
use crate::world::workdir::WorkDir;
use ferry_core::{Clock, SystemClock};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const EXAMPLE: &str = "Examples:
  ferry bench install                    # a 1 GiB image, in a temporary directory
  ferry bench install --size 256MiB --dir /var/tmp/bench --json

Needs ferry-primary and ferry-secondary next to this ferry
(cargo build --release -p ferry-tools -p ferry-primary -p ferry-secondary), and openssl and dd
for the baselines. Disk: about 3 times the image size in the directory.
Goal: ratio <= 1.3 and peak RSS <= 64 MiB for both the primary and the Secondary.";

/// Install time over max(sha256, durable copy) must stay under this.
pub const GOAL_RATIO: f64 = 1.3;
/// Peak resident memory of each of the primary and the Secondary, in MiB.
pub const GOAL_RSS_MIB: f64 = 64.0;

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Image size: bytes, or with a KiB/MiB/GiB suffix.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
    /// Work in this directory (created; kept afterwards) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(super) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((t, 1));
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1GiB, 64MiB, 4096)"))?;
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("{s:?} must be between 1 byte and 16 EiB")),
    }
}

pub fn run(args: Args) -> Result<()> {
    let ferry = std::env::current_exe()
        .map_err(|e| Error::Bench(format!("locating the ferry executable failed: {e}")))?;
    let primary_bin = procs::sibling("ferry-primary")?;
    let secondary_bin = procs::sibling("ferry-secondary")?;
    let work = WorkDir::new(args.dir, "ferry-bench-install")?;
    let dir = work.path.as_path();

    let mut setup = Phases::start();
    let image = dir.join("image.bin");
    measure::write_image(&image, args.size)?;
    setup.lap("generate_image");
    let bar = spinner("setting up");
    let world = world::start(dir, &ferry, &secondary_bin, &bar, world::Source::Online)?;
    setup.lap("start_backend");
    bar.set_message("baselines: openssl dgst -sha256, dd conv=fdatasync");
    let (sha, dd) = measure::baselines(&image, &dir.join("copy.bin"))?;
    setup.lap("baselines");

    bar.set_message("ferry-primary check: verify, download, install on the Secondary");
    let phases;
    let cpu_of = |daemon: &procs::Daemon| measure::cpu_seconds(daemon.guard.pid()).unwrap_or(0.0);
    let cpu_before = (cpu_of(&world.secondary), cpu_of(&world.repo));
    let steal_before = host_steal();
    let (took, primary_kib, primary_cpu) = {
        let mut cmd = Command::new(&primary_bin);
        cmd.args(["--config", "primary.toml", "check", "--json"]);
        let start = Instant::now();
        let started_at = SystemClock.now();
        let mut guard = procs::spawn(dir, cmd, "ferry-primary")?;
        let stdout = guard.child.stdout.take();
        // Drain stdout on a thread so the primary never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut out) = stdout {
                let _ = std::io::Read::read_to_string(&mut out, &mut text);
            }
            text
        });
        let run = measure::wait_sampling(&mut guard.child, start)?;
        let out = reader.join().unwrap_or_default();
        if !run.status.success() {
            return Err(Error::Bench(format!(
                "ferry-primary check failed ({}): {}\n{}",
                run.status,
                out.trim(),
                procs::tail(&guard.log, 20)
            )));
        }
        check_result(&out, dir, args.size)?;
        phases = measure::primary_phases(&guard.log, started_at);
        (run.took, run.peak_kib, run.cpu_seconds)
    };
    let cpu = [
        ("primary", primary_cpu),
        ("secondary", cpu_of(&world.secondary) - cpu_before.0),
        ("image_repo", cpu_of(&world.repo) - cpu_before.1),
    ];
    let cpu_total: f64 = cpu.iter().map(|(_, s)| s).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The share of the cores' time during the install the host gave to other machines.
    let steal = steal_since(steal_before).map(|steal| steal_share(steal, took, cores));
    let secondary_kib = measure::status_kib(world.secondary.guard.pid(), "VmHWM")
        .ok_or_else(|| Error::Bench("reading ferry-secondary's VmHWM from /proc failed".into()))?;
    drop(world);
    bar.finish_and_clear();

    let t = took.as_secs_f64();
    let baseline = sha.max(dd).as_secs_f64();
    let r = ratio(t, baseline);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mib_per_s = |secs: f64| ratio(args.size as f64 / (1 << 20) as f64, secs);
    let rss_ok = mib(primary_kib) <= GOAL_RSS_MIB && mib(secondary_kib) <= GOAL_RSS_MIB;
    let ratio_ok = r > 0.0 && r <= GOAL_RATIO;
    let results = json!({
        "image_bytes": args.size,
        "install_seconds": t,
        "install_mib_per_second": mib_per_s(t),
        "baselines": {
            "openssl_sha256_seconds": sha.as_secs_f64(),
            "openssl_sha256_mib_per_second": mib_per_s(sha.as_secs_f64()),
            "dd_fdatasync_seconds": dd.as_secs_f64(),
            "dd_fdatasync_mib_per_second": mib_per_s(dd.as_secs_f64()),
        },
        "ratio": r,
        "peak_rss_mib": { "primary": mib(primary_kib), "secondary": mib(secondary_kib) },
        "goal": {
            "ratio": GOAL_RATIO,
            "rss_mib": GOAL_RSS_MIB,
            "ratio_ok": ratio_ok,
            "rss_ok": rss_ok,
            "ok": ratio_ok && rss_ok,
        },
        "primary_phases_seconds": phases
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "cpu_seconds": cpu
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "cores": cores,
        "host_steal_share": steal,
        "setup_seconds": setup.to_json(),
    });
    if args.json {
        return print_json(&results);
    }
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "ferry bench install: {} MiB image to 1 Secondary (full verification) over loopback",
        args.size >> 20
    );
    println!(
        "  install (ferry-primary check)  {:>10}  {:>8.1} MiB/s",
        secs(took),
        mib_per_s(t)
    );
    println!(
        "  openssl dgst -sha256           {:>10}  {:>8.1} MiB/s",
        secs(sha),
        mib_per_s(sha.as_secs_f64())
    );
    println!(
        "  dd bs=4M conv=fdatasync        {:>10}  {:>8.1} MiB/s",
        secs(dd),
        mib_per_s(dd.as_secs_f64())
    );
    println!(
        "  ratio to the slower baseline   {r:>10.2}  goal <= {GOAL_RATIO}: {}",
        verdict(ratio_ok)
    );
    println!(
        "  peak RSS  primary {:.1} MiB, secondary {:.1} MiB  goal <= {GOAL_RSS_MIB} MiB: {}",
        mib(primary_kib),
        mib(secondary_kib),
        verdict(rss_ok)
    );
    let described: Vec<String> = phases
        .iter()
        .map(|(name, secs)| format!("{name} {secs:.2}s"))
        .collect();
    println!("  primary phases: {}", described.join(", "));
    let per_process: Vec<String> = cpu
        .iter()
        .map(|(name, secs)| format!("{name} {secs:.2}s"))
        .collect();
    // On `cores` cores the CPU the three processes used is a floor for the wall time.
    println!(
        "  CPU time: {} (total {cpu_total:.2}s; on {cores} cores at least {:.2}s, ratio {:.2})",
        per_process.join(", "),
        cpu_total / cores as f64,
        ratio(cpu_total / cores as f64, baseline)
    );
    if let Some(steal) = steal {
        println!(
            "  host steal: {:.1}% of the cores' time went to other machines on this host during the install",
            steal * 100.0
        );
    }
    println!("  setup: {}", setup.describe());
    Ok(())
}

/// The primary says it updated, and the Secondary holds the whole image.
pub(super) fn check_result(out: &str, dir: &Path, size: u64) -> Result<()> {
    let v: serde_json::Value = serde_json::from_str(out)
        .map_err(|e| Error::Bench(format!("ferry-primary check --json: not JSON ({e}): {out}")))?;
    if v["result"] != "updated" {
        return Err(Error::Bench(format!(
            "ferry-primary check did not update: {v}"
        )));
    }
    let files = world::installed_files(dir);
    if !files
        .iter()
        .any(|f| std::fs::metadata(f).is_ok_and(|m| m.len() == size))
    {
        return Err(Error::Bench(format!(
            "no {size}-byte file installed under {SECONDARY}-apps: {files:?}",
            SECONDARY = world::SECONDARY
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("big").is_err());
    }
}
