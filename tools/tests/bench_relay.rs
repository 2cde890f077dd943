//! `ferry bench relay` smoke test: a small target served from the relay's cache and from a real
//! nginx (Debian's nginx-light, started by the bench on 127.0.0.1) in the same run, checking
//! the shape and consistency of its JSON results. Never a timed assertion. Skips, saying why,
//! where nginx is not installed (CI installs it: .ci/run).

#![allow(clippy::unwrap_used)]

use ferry_tests::process::run_bounded;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Longest the small bench may take (debug build: a 4 MiB file read a few times).
const TIMEOUT: Duration = Duration::from_secs(300);

/// nginx on PATH, or where Debian puts it (/usr/sbin is not on every PATH).
fn nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("nginx"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
}

fn positive(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn bench_relay_reports_both_rates_from_their_medians_and_their_ratio() {
    let Some(nginx) = nginx() else {
        eprintln!(
            "SKIP bench_relay: no nginx on PATH or at /usr/sbin/nginx (Debian: apt-get install nginx-light)"
        );
        return;
    };
    let ferry = PathBuf::from(env!("CARGO_BIN_EXE_ferry"));
    let out = run_bounded(
        Command::new(&ferry)
            .args([
                "bench", "relay", "--size", "4MiB", "--rounds", "3", "--json",
            ])
            .arg("--nginx")
            .arg(&nginx),
        TIMEOUT,
    );
    assert_eq!(out.code, 0, "ferry bench relay failed:\n{out}");
    let json: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", out.stdout));

    assert_eq!(json["size"], 4 << 20, "{json}");
    assert_eq!(json["rounds"], 3, "{json}");
    let mib = 4.0;
    let relay_s = positive(&json["relay_median_seconds"], "relay_median_seconds");
    let nginx_s = positive(&json["nginx_median_seconds"], "nginx_median_seconds");
    let relay = positive(&json["relay_mib_per_s"], "relay_mib_per_s");
    let nginx_rate = positive(&json["nginx_mib_per_s"], "nginx_mib_per_s");
    assert!(close(relay, mib / relay_s), "{json}");
    assert!(close(nginx_rate, mib / nginx_s), "{json}");
    let ratio = positive(&json["ratio"], "ratio");
    assert!(close(ratio, relay / nginx_rate), "{json}");
    assert_eq!(json["goal"], 0.9, "{json}");
    assert_eq!(json["goal_met"], ratio >= 0.9, "{json}");
}
