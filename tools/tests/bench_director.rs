//! `ferry bench director` smoke test: a small run through the real binary, checking the shape
//! and consistency of its JSON results. Never a timed assertion: rates and latencies only have
//! to be positive numbers.

use ferry_tests::process::run_bounded;
use std::process::Command;
use std::time::Duration;

/// Longest the small bench may take (debug build: setup, pre-signing and a 1 s window).
const TIMEOUT: Duration = Duration::from_secs(300);

fn positive(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

#[test]
fn bench_director_reports_throughput_latency_and_the_crypto_ceiling() {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ferry")).args([
            "bench",
            "director",
            "--vehicles",
            "20",
            "--duration",
            "1",
            "--json",
        ]),
        TIMEOUT,
    );
    assert_eq!(out.code, 0, "ferry bench director failed:\n{out}");
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", out.stdout));

    assert_eq!(json["vehicles"], 20);
    assert_eq!(json["ecus_per_vehicle"], 3);
    assert_eq!(json["requests_per_check_in"], 3);
    assert_eq!(json["duration_seconds"], 1.0);
    // 20 vehicles: at most 20 check-ins in flight.
    assert_eq!(json["in_flight"], 20);
    // Nothing failed and nothing acknowledged was lost.
    assert_eq!(json["failed"], 0, "{json}");
    assert!(json["first_failure"].is_null(), "{json}");
    assert_eq!(json["lost"], 0, "{json}");

    let check_ins = json["check_ins"].as_u64().expect("check_ins");
    assert!(check_ins > 0, "{json}");
    let rate = positive(&json["check_ins_per_second"], "check_ins_per_second");
    positive(&json["window_seconds"], "window_seconds");
    let p50 = positive(&json["latency_ms"]["p50"], "latency_ms.p50");
    let p99 = positive(&json["latency_ms"]["p99"], "latency_ms.p99");
    let max = positive(&json["latency_ms"]["max"], "latency_ms.max");
    assert!(p50 <= p99 && p99 <= max, "{json}");

    // The ceiling: 1 primary + 3 ECU signatures verified, nothing signed, per check-in.
    let ceiling = &json["crypto_ceiling"];
    assert_eq!(ceiling["verifications_per_check_in"], 4);
    assert_eq!(ceiling["signings_per_check_in"], 0);
    positive(
        &ceiling["verification_us"],
        "crypto_ceiling.verification_us",
    );
    let limit = positive(
        &ceiling["check_ins_per_second"],
        "crypto_ceiling.check_ins_per_second",
    );
    let ratio = positive(&json["ratio"], "ratio");
    assert!(
        (ratio - rate / limit).abs() <= 1e-9 * ratio.max(1.0),
        "{json}"
    );

    assert_eq!(json["goal"]["check_ins_per_second"], 2000.0);
    assert!(json["goal"]["ok"].is_boolean(), "{json}");
    // Enough manifests were pre-signed: the window was not cut short.
    assert_eq!(json["ran_out_of_manifests"], false, "{json}");
    assert!(
        json["manifests_per_vehicle"]
            .as_u64()
            .expect("manifests_per_vehicle")
            >= 2
    );
    for phase in ["register", "crypto_ceiling", "presign", "start_director"] {
        assert!(
            json["setup_seconds"][phase].as_f64().is_some(),
            "setup_seconds.{phase}: {json}"
        );
    }
}

/// With `--database` on PostgreSQL the bench measures SQLite first, in the same run, and
/// reports both and the ratio (issue #23). Here on the tests' PostgreSQL server.
#[test]
fn bench_director_on_postgresql_reports_the_ratio_to_sqlite_measured_in_the_same_run() {
    let Some(url) = ferry_director::store::postgres::cluster::test_database("bench") else {
        return;
    };
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ferry")).args([
            "bench",
            "director",
            "--vehicles",
            "20",
            "--duration",
            "1",
            "--database",
            &url,
            "--json",
        ]),
        TIMEOUT,
    );
    assert_eq!(
        out.code, 0,
        "ferry bench director --database failed:\n{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", out.stdout));
    for side in ["sqlite", "postgres"] {
        positive(
            &json[side]["check_ins_per_second"],
            &format!("{side}.check_ins_per_second"),
        );
        assert_eq!(json[side]["lost"], 0, "{json}");
        assert_eq!(json[side]["failed"], 0, "{json}");
    }
    assert!(
        json["sqlite"]["database"]
            .as_str()
            .unwrap_or("")
            .starts_with("SQLite"),
        "{json}"
    );
    assert!(
        json["postgres"]["database"]
            .as_str()
            .unwrap_or("")
            .starts_with("PostgreSQL"),
        "{json}"
    );
    positive(&json["ratio_to_sqlite"], "ratio_to_sqlite");
}
