//! `ferry bench install` smoke test: an 8 MiB image through the real binaries (ferry,
//! ferry-primary, ferry-secondary, debug builds side by side in target/debug), checking the
//! shape and consistency of its JSON results. Never a timed assertion.

use ferry_tests::bins::binary;
use ferry_tests::process::run_bounded;
use std::process::Command;
use std::time::Duration;

/// Longest the small bench may take (debug build: setup through a dozen CLI runs).
const TIMEOUT: Duration = Duration::from_secs(300);

fn positive(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

#[test]
fn bench_install_reports_time_baselines_ratio_and_peak_rss() {
    // Fresh debug siblings of the ferry under test.
    let primary = binary("ferry-primary", "ferry-primary");
    let secondary = binary("ferry-secondary", "ferry-secondary");
    let ferry = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ferry"));
    assert_eq!(primary.parent(), ferry.parent(), "siblings of {ferry:?}");
    assert_eq!(secondary.parent(), ferry.parent(), "siblings of {ferry:?}");

    let out = run_bounded(
        Command::new(&ferry).args(["bench", "install", "--size", "8MiB", "--json"]),
        TIMEOUT,
    );
    assert_eq!(out.code, 0, "ferry bench install failed:\n{out}");
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", out.stdout));

    assert_eq!(json["image_bytes"], 8 << 20, "{json}");
    let t = positive(&json["install_seconds"], "install_seconds");
    positive(&json["install_mib_per_second"], "install_mib_per_second");
    let b = &json["baselines"];
    let sha = positive(&b["openssl_sha256_seconds"], "openssl_sha256_seconds");
    let dd = positive(&b["dd_fdatasync_seconds"], "dd_fdatasync_seconds");
    positive(&b["openssl_sha256_mib_per_second"], "sha256 MiB/s");
    positive(&b["dd_fdatasync_mib_per_second"], "dd MiB/s");
    let ratio = positive(&json["ratio"], "ratio");
    let expected = t / sha.max(dd);
    assert!((ratio - expected).abs() <= 1e-9 * ratio.max(1.0), "{json}");

    // Both processes were measured: a Rust binary is never under 1 MiB resident, nor
    // (at 8 MiB of image) anywhere near 1 GiB.
    for who in ["primary", "secondary"] {
        let mib = positive(&json["peak_rss_mib"][who], who);
        assert!((1.0..1024.0).contains(&mib), "{who}: {json}");
    }
    // CPU time of each process (10 ms ticks, so a short run may read 0 for one of them).
    for who in ["primary", "secondary", "image_repo"] {
        let secs = json["cpu_seconds"][who].as_f64();
        assert!(
            secs.is_some_and(|s| s.is_finite() && s >= 0.0),
            "cpu_seconds.{who}: {json}"
        );
    }
    assert!(json["cores"].as_u64().is_some_and(|n| n >= 1), "{json}");
    assert_eq!(json["goal"]["ratio"], 1.3);
    assert_eq!(json["goal"]["rss_mib"], 64.0);
    for verdict in ["ratio_ok", "rss_ok", "ok"] {
        assert!(json["goal"][verdict].is_boolean(), "{verdict}: {json}");
    }
    for phase in ["generate_image", "start_backend", "baselines"] {
        assert!(
            json["setup_seconds"][phase].as_f64().is_some(),
            "setup_seconds.{phase}: {json}"
        );
    }
}

#[test]
fn a_bad_size_is_refused() {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ferry")).args(["bench", "install", "--size", "lots"]),
        Duration::from_secs(60),
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("is not a size"), "{out}");
}
