//! What every `ferry bench` shares to report its results: medians and percentiles of timings,
//! ratios to a baseline and goal verdicts, human-readable numbers, step timings, progress
//! spinners on stderr, and the `--json` output.

use crate::error::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::time::{Duration, Instant};

/// The median of `times`, in seconds (0 for none).
pub fn median(times: &[Duration]) -> f64 {
    let mut s: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The `p`-th percentile (0 < p <= 100, nearest rank) of `sorted`, which must be sorted
/// ascending (zero for none).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `measured / baseline`; 0 when the baseline is 0 (nothing to compare against), so a
/// report never prints NaN or infinity.
pub fn ratio(measured: f64, baseline: f64) -> f64 {
    if baseline > 0.0 && baseline.is_finite() {
        measured / baseline
    } else {
        0.0
    }
}

/// CPU time the hypervisor gave to other guests instead of this machine, summed over its
/// CPUs, since boot: the `steal` field of /proc/stat's `cpu` line (`None` where there is
/// none). A benchmark window with much of it measured a host busy with other machines.
pub fn host_steal() -> Option<Duration> {
    parse_steal(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Host steal since `before`, a [`host_steal`] reading.
pub fn steal_since(before: Option<Duration>) -> Option<Duration> {
    Some(host_steal()?.saturating_sub(before?))
}

/// `steal` as a share of `cores` cores' time over `elapsed`.
pub fn steal_share(steal: Duration, elapsed: Duration, cores: usize) -> f64 {
    ratio(steal.as_secs_f64(), elapsed.as_secs_f64() * cores as f64)
}

fn parse_steal(stat: &str) -> Option<Duration> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // cpu user nice system idle iowait irq softirq steal ..., in 1/100 s (USER_HZ).
    let ticks: u64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Print `value` as pretty JSON on stdout (the `--json` output of every bench).
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Usage(format!("JSON output check failed: {e}")))?;
    println!("{text}");
    Ok(())
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
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

pub fn secs(d: Duration) -> String {
    secs_f(d.as_secs_f64())
}

pub fn secs_f(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Named consecutive steps and how long each took.
#[derive(Debug, Default)]
pub struct Phases {
    steps: Vec<(&'static str, Duration)>,
    last: Option<Instant>,
}

impl Phases {
    /// Begin the first step now.
    pub fn start() -> Phases {
        Phases {
            steps: Vec::new(),
            last: Some(Instant::now()),
        }
    }

    /// End the current step (begun at the previous lap).
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        let since = self.last.unwrap_or(now);
        self.steps.push((name, now - since));
        self.last = Some(now);
    }

    /// Step by step, the median over several runs of the same steps.
    pub fn medians(runs: &[Phases]) -> Phases {
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

    pub fn describe(&self) -> String {
        self.steps
            .iter()
            .map(|(n, d)| format!("{n} {}", secs(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.steps
            .iter()
            .map(|(n, d)| ((*n).to_owned(), json!(d.as_secs_f64())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// A spinner on stderr with a message and the elapsed time (drawn only on a terminal).
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A counting bar on stderr for `total` items of work (drawn only on a terminal).
pub fn counter(total: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message.to_owned());
    bar
}

/// A line on stderr above the spinner (also when the spinner is hidden).
pub fn say(bar: &ProgressBar, line: &str) {
    bar.suspend(|| eprintln!("{line}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

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
        assert_eq!(median(&ms(&[30, 10, 20])), 0.02);
        assert_eq!(median(&ms(&[40, 10, 20, 30])), 0.025);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&ms(&[7]), 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn a_ratio_to_nothing_is_zero() {
        assert_eq!(ratio(1.0, 4.0), 0.25);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }

    #[test]
    fn steal_is_the_eighth_figure_of_the_cpu_line() {
        let stat = "cpu  9181043 40290 796601 1750354 51257 0 23245 432956 0 0\n\
                    cpu0 4590000 20000 398000 875000 25000 0 11000 216000 0 0\n";
        assert_eq!(parse_steal(stat), Some(Duration::from_millis(4_329_560)));
        assert_eq!(parse_steal("cpu0 1 2 3\n"), None);
        assert_eq!(parse_steal("cpu  1 2 3\n"), None);
    }
}
