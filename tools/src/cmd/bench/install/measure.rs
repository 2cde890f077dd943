//! What `ferry bench install` measures besides the install itself: the image (streamed to
//! disk), the baselines on the same bytes, and the resident memory of a process.

use crate::error::{io_at, Error, Result};
use crate::progress::bytes_bar;
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 20;

/// Write `size` pseudo-random bytes (xorshift64*, fixed seed) to `path`, 1 MiB at a time.
pub fn write_image(path: &Path, size: u64) -> Result<()> {
    let file = std::fs::File::create(path).map_err(io_at(path))?;
    let mut out = std::io::BufWriter::with_capacity(CHUNK, file);
    let bar = bytes_bar(size, "generating the image");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        out.write_all(&buf[..n]).map_err(io_at(path))?;
        left -= n as u64;
        bar.inc(n as u64);
    }
    out.flush().map_err(io_at(path))?;
    out.into_inner()
        .map_err(|e| Error::Bench(format!("{}: flush failed: {e}", path.display())))?
        .sync_all()
        .map_err(io_at(path))?;
    bar.finish_and_clear();
    Ok(())
}

/// How long `program args` takes; it must exit 0.
pub fn time_command(program: &str, args: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Bench(format!("running {program} failed (is it installed?): {e}")))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(Error::Bench(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(took)
}

/// The baselines on the image's bytes: `openssl dgst -sha256` and a `dd` copy with
/// `conv=fdatasync` (its copy is removed afterwards).
pub fn baselines(image: &Path, copy: &Path) -> Result<(Duration, Duration)> {
    let image_s = image.to_string_lossy();
    let sha = time_command("openssl", &["dgst", "-sha256", &image_s])?;
    let dd = time_command(
        "dd",
        &[
            &format!("if={image_s}"),
            &format!("of={}", copy.to_string_lossy()),
            "bs=4M",
            "conv=fdatasync",
            "status=none",
        ],
    )?;
    std::fs::remove_file(copy).map_err(io_at(copy))?;
    Ok((sha, dd))
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`), if the process still exists.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system, every thread) a process has used so far, if it still exists.
/// Reported so a reader can tell a CPU-bound run from one waiting on I/O: on N cores the
/// processes' CPU seconds over N is a floor for the wall time.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `comm`.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on (the kernel ABI fixes it).
    Some(ticks as f64 / 100.0)
}

/// What [`wait_sampling`] saw of a process that ran to its end.
#[derive(Debug)]
pub struct Sampled {
    pub status: ExitStatus,
    pub took: Duration,
    /// Peak RSS in KiB.
    pub peak_kib: u64,
    /// CPU seconds at the last sample (at most 20 ms before the exit).
    pub cpu_seconds: f64,
}

/// Wait for `child`, sampling its memory and CPU time every 20 ms; its exit status, the time
/// from `start`, the peak RSS seen in KiB (VmHWM while it lives, so nothing between samples
/// is missed but its last 20 ms) and its CPU time.
pub fn wait_sampling(child: &mut Child, start: Instant) -> Result<Sampled> {
    let pid = child.id();
    let (mut peak_kib, mut cpu) = (0, 0.0);
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::Bench(format!("waiting for ferry-primary failed: {e}")))?
        {
            return Ok(Sampled {
                status,
                took: start.elapsed(),
                peak_kib,
                cpu_seconds: cpu,
            });
        }
        for field in ["VmHWM", "VmRSS"] {
            if let Some(kib) = status_kib(pid, field) {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(now) = cpu_seconds(pid) {
            cpu = now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `line` without its ANSI colour sequences (`ESC [ ... m`).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Where the primary's time went, from the timestamps of its log lines (`start` is when it
/// was started): verifying both repositories' metadata (to the first "download started"),
/// streaming the image to the ECUs (to the last "ECU ready"), installing and reporting (to
/// the manifest's acceptance). Phases whose log lines are missing are left out.
pub fn primary_phases(log: &Path, start: DateTime<Utc>) -> Vec<(&'static str, f64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut download, mut ready, mut accepted) = (None, None, None);
    for line in text.lines().map(plain) {
        let Some(time) = line
            .split_whitespace()
            .next()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
        else {
            continue;
        };
        if line.contains("download started") && download.is_none() {
            download = Some(time);
        } else if line.contains("ECU ready") {
            ready = Some(time);
        } else if line.contains("vehicle manifest accepted") {
            accepted = Some(time);
        }
    }
    let secs =
        |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6;
    [
        ("verify_metadata", Some(start), download),
        ("stream_to_ecus", download, ready),
        ("install_and_report", ready, accepted),
    ]
    .into_iter()
    .filter_map(|(name, from, to)| Some((name, secs(from?, to?))))
    .collect()
}
