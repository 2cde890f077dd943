//! `ferry bench bundle`: one offline-update bundle (Uptane PURE-2) holding a large image,
//! installed from a directory on a Secondary through the real binaries with the backend
//! stopped, as a ratio to what the machine needs to hash the same bytes and then to copy them
//! durably, measured in the same run.
//!
//! Set up as `ferry bench install` does, but the Director's root names an offline-update key
//! and `ferry admin bundle create` writes the image into a bundle directory; then the Director
//! and the Image repository are stopped. Timed: `ferry-primary --config primary.toml offline
//! --bundle bundle`, which verifies the bundle's metadata with the roots the vehicle trusts,
//! streams the image from the bundle to the Secondary (`ferry-secondary`, full verification),
//! which verifies and installs it, and writes the signed receipt. Baselines on the image file:
//! `openssl dgst -sha256` and `dd bs=4M conv=fdatasync`; the ratio is the install time over
//! their sum (a reader of a USB stick hashes, then writes). Peak RSS: ferry-primary's sampled
//! every 20 ms from /proc (VmHWM), ferry-secondary's VmHWM after the run.

use super::install::{check_result, measure, parse_size, procs, world};
use super::report::{host_steal, print_json, ratio, secs, spinner, steal_share, steal_since};
use crate::error::{Error, Result};
use crate::world::workdir::WorkDir;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const EXAMPLE: &str = "Examples:
  ferry bench bundle                     # a 1 GiB image in a bundle, in a temporary directory
  ferry bench bundle --size 256MiB --dir /var/tmp/bench --json

Needs ferry-primary and ferry-secondary next to this ferry
(cargo build --release -p ferry-tools -p ferry-primary -p ferry-secondary), and openssl and dd
for the baselines. Disk: about 5 times the image size in the directory.
Goal: ratio <= 1.2 and peak RSS <= 64 MiB for both the primary and the Secondary.";

/// Install time over (sha256 + durable copy) must stay under this.
pub const GOAL_RATIO: f64 = 1.2;
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

pub fn run(args: Args) -> Result<()> {
    let ferry = std::env::current_exe()
        .map_err(|e| Error::Bench(format!("locating the ferry executable failed: {e}")))?;
    let primary_bin = procs::sibling("ferry-primary")?;
    let secondary_bin = procs::sibling("ferry-secondary")?;
    let work = WorkDir::new(args.dir, "ferry-bench-bundle")?;
    let dir = work.path.as_path();

    let image = dir.join("image.bin");
    measure::write_image(&image, args.size)?;
    let bar = spinner("setting up");
    let world = world::start(dir, &ferry, &secondary_bin, &bar, world::Source::Bundle)?;
    // Offline: nothing but the bundle and the vehicle from here on.
    let secondary = world.without_backend();
    bar.set_message("baselines: openssl dgst -sha256, dd conv=fdatasync");
    let (sha, dd) = measure::baselines(&image, &dir.join("copy.bin"))?;

    bar.set_message("ferry-primary offline --bundle: verify, install on the Secondary, receipt");
    let secondary_cpu_before = measure::cpu_seconds(secondary.guard.pid()).unwrap_or(0.0);
    let steal_before = host_steal();
    let mut cmd = Command::new(&primary_bin);
    cmd.args([
        "--config",
        "primary.toml",
        "offline",
        "--bundle",
        world::BUNDLE,
        "--json",
    ]);
    let start = Instant::now();
    let mut guard = procs::spawn(dir, cmd, "ferry-primary-offline")?;
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
            "ferry-primary offline failed ({}): {}\n{}",
            run.status,
            out.trim(),
            procs::tail(&guard.log, 20)
        )));
    }
    check_result(&out, dir, args.size)?;
    let receipt = serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["receipt"].as_str().map(str::to_owned))
        .ok_or_else(|| Error::Bench(format!("ferry-primary offline wrote no receipt: {out}")))?;
    let took = run.took;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let steal = steal_since(steal_before).map(|steal| steal_share(steal, took, cores));
    let cpu = [
        ("primary", run.cpu_seconds),
        (
            "secondary",
            measure::cpu_seconds(secondary.guard.pid()).unwrap_or(0.0) - secondary_cpu_before,
        ),
    ];
    let secondary_kib = measure::status_kib(secondary.guard.pid(), "VmHWM")
        .ok_or_else(|| Error::Bench("reading ferry-secondary's VmHWM from /proc failed".into()))?;
    drop(secondary);
    bar.finish_and_clear();

    let t = took.as_secs_f64();
    let baseline = (sha + dd).as_secs_f64();
    let r = ratio(t, baseline);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mib_per_s = |secs: f64| ratio(args.size as f64 / (1 << 20) as f64, secs);
    let rss_ok = mib(run.peak_kib) <= GOAL_RSS_MIB && mib(secondary_kib) <= GOAL_RSS_MIB;
    let ratio_ok = r > 0.0 && r <= GOAL_RATIO;
    let results = json!({
        "image_bytes": args.size,
        "install_seconds": t,
        "install_mib_per_second": mib_per_s(t),
        "baselines": {
            "openssl_sha256_seconds": sha.as_secs_f64(),
            "dd_fdatasync_seconds": dd.as_secs_f64(),
            "sum_seconds": baseline,
        },
        "ratio": r,
        "peak_rss_mib": { "primary": mib(run.peak_kib), "secondary": mib(secondary_kib) },
        "goal": {
            "ratio": GOAL_RATIO,
            "rss_mib": GOAL_RSS_MIB,
            "ratio_ok": ratio_ok,
            "rss_ok": rss_ok,
            "ok": ratio_ok && rss_ok,
        },
        "cpu_seconds": cpu
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "receipt": receipt,
        "cores": cores,
        "host_steal_share": steal,
    });
    if args.json {
        return print_json(&results);
    }
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "ferry bench bundle: {} MiB image in an offline-update bundle, to 1 Secondary (full verification)",
        args.size >> 20
    );
    println!(
        "  ferry-primary offline --bundle      {:>10}  {:>8.1} MiB/s",
        secs(took),
        mib_per_s(t)
    );
    println!("  openssl dgst -sha256                {:>10}", secs(sha));
    println!("  dd bs=4M conv=fdatasync             {:>10}", secs(dd));
    println!(
        "  ratio to their sum                  {r:>10.2}  goal <= {GOAL_RATIO}: {}",
        verdict(ratio_ok)
    );
    println!(
        "  peak RSS  primary {:.1} MiB, secondary {:.1} MiB  goal <= {GOAL_RSS_MIB} MiB: {}",
        mib(run.peak_kib),
        mib(secondary_kib),
        verdict(rss_ok)
    );
    let per_process: Vec<String> = cpu
        .iter()
        .map(|(name, secs)| format!("{name} {secs:.2}s"))
        .collect();
    println!("  CPU time: {}", per_process.join(", "));
    if let Some(steal) = steal {
        println!(
            "  host steal: {:.1}% of the cores' time went to other machines on this host",
            steal * 100.0
        );
    }
    println!("  receipt: {receipt}");
    Ok(())
}
