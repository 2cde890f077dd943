//! `ferry bench bundle` smoke test: an 8 MiB image in an offline-update bundle through the
//! real binaries (ferry, ferry-primary, ferry-secondary, debug builds side by side in
//! target/debug), checking the shape and consistency of its JSON results and that the install
//! wrote a receipt. Never a timed assertion.

#![allow(clippy::unwrap_used)]

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
fn bench_bundle_reports_time_summed_baselines_ratio_peak_rss_and_receipt() {
    let primary = binary("ferry-primary", "ferry-primary");
    let secondary = binary("ferry-secondary", "ferry-secondary");
    let ferry = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ferry"));
    assert_eq!(primary.parent(), ferry.parent(), "siblings of {ferry:?}");
    assert_eq!(secondary.parent(), ferry.parent(), "siblings of {ferry:?}");

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("bench");
    let out = run_bounded(
        Command::new(&ferry).args([
            "bench",
            "bundle",
            "--size",
            "8MiB",
            "--json",
            "--dir",
            work.to_str().unwrap(),
        ]),
        TIMEOUT,
    );
    assert_eq!(out.code, 0, "ferry bench bundle failed:\n{out}");
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", out.stdout));

    assert_eq!(json["image_bytes"], 8 << 20, "{json}");
    let t = positive(&json["install_seconds"], "install_seconds");
    let b = &json["baselines"];
    let sha = positive(&b["openssl_sha256_seconds"], "openssl_sha256_seconds");
    let dd = positive(&b["dd_fdatasync_seconds"], "dd_fdatasync_seconds");
    let sum = positive(&b["sum_seconds"], "sum_seconds");
    assert!((sum - (sha + dd)).abs() <= 1e-9 * sum.max(1.0), "{json}");
    let ratio = positive(&json["ratio"], "ratio");
    assert!((ratio - t / sum).abs() <= 1e-9 * ratio.max(1.0), "{json}");
    for who in ["primary", "secondary"] {
        let mib = positive(&json["peak_rss_mib"][who], who);
        assert!((1.0..1024.0).contains(&mib), "{who}: {json}");
    }
    assert_eq!(json["goal"]["ratio"], 1.2);
    assert_eq!(json["goal"]["rss_mib"], 64.0);
    for verdict in ["ratio_ok", "rss_ok", "ok"] {
        assert!(json["goal"][verdict].is_boolean(), "{verdict}: {json}");
    }

    // The install was the offline one: the bundle got the vehicle's signed receipt, and the
    // Secondary holds the image from the bundle, byte for byte.
    let receipt = json["receipt"].as_str().expect("receipt path");
    let signed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join(receipt)).unwrap_or_else(|_| {
            std::fs::read(receipt).unwrap_or_else(|e| panic!("reading receipt {receipt}: {e}"))
        }))
        .unwrap();
    assert_eq!(
        signed["signed"]["offline_bundle"]["name"], "bench",
        "{signed}"
    );
    assert!(
        work.join("bundle").join("receipts").is_dir(),
        "no receipts/ in the bundle"
    );
    let image = std::fs::read(work.join("image.bin")).unwrap();
    let installed = walk(&work.join("tcu-1-apps"));
    assert!(
        installed
            .iter()
            .any(|f| std::fs::read(f).is_ok_and(|bytes| bytes == image)),
        "the Secondary holds no copy of the image: {installed:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}
