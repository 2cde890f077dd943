//! `ferry bench repo` smoke test: a small run through the real binary, checking the shape of
//! its JSON results. Never a timed assertion: ratios only have to be positive numbers.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest the small bench may take (debug build, python-tuf included).
const TIMEOUT: Duration = Duration::from_secs(300);

/// Run `cmd`, killing it after `timeout`; returns (success, stdout, stderr).
fn run_bounded(cmd: &mut Command, timeout: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ferry") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ferry bench repo did not finish within {timeout:?}; stderr:\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    )
}

fn positive(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

#[test]
fn bench_repo_reports_ratios_and_client_bytes() {
    let python = ferry_tests::python::python();
    let work = tempfile::tempdir().expect("temp dir");
    let (ok, stdout, stderr) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "bench",
                "repo",
                "--targets",
                "2000",
                "--bins",
                "16",
                "--runs",
                "1",
                "--json",
            ])
            .arg("--python")
            .arg(&python)
            .arg("--work-dir")
            .arg(work.path()),
        TIMEOUT,
    );
    assert!(ok, "ferry bench repo failed:\n{stdout}\n{stderr}");
    let out: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: not JSON:\n{stdout}"));

    assert_eq!(out["targets"], 2000);
    assert_eq!(out["bins"], 16);
    assert_eq!(out["python_tuf"], "7.0.1");
    positive(&out["add_and_publish"]["ratio"], "add_and_publish.ratio");
    positive(
        &out["verify_one_target"]["ratio"],
        "verify_one_target.ratio",
    );
    for side in ["ferry", "python"] {
        positive(
            &out["add_and_publish"][format!("{side}_seconds")],
            "add_and_publish seconds",
        );
        positive(
            &out["verify_one_target"][format!("{side}_seconds")],
            "verify_one_target seconds",
        );
    }
    assert_eq!(out["add_and_publish"]["goal"], 0.1);
    assert_eq!(out["verify_one_target"]["goal"], 0.2);
    // One publish writes the new target's bin, then snapshot and timestamp.
    let wrote = out["add_and_publish"]["ferry_wrote"]
        .as_str()
        .expect("ferry_wrote");
    assert!(
        wrote.starts_with("bins-") && wrote.contains("snapshot") && wrote.contains("timestamp"),
        "{wrote}"
    );

    // A ferry client fetches root, timestamp, snapshot, targets and one bin; a flat client
    // root, timestamp, snapshot and the whole targets.json.
    let bytes = &out["client_bytes"];
    let ferry = bytes["ferry"].as_object().expect("client_bytes.ferry");
    let flat = bytes["flat"].as_object().expect("client_bytes.flat");
    for role in ["root", "timestamp", "snapshot", "targets", "total"] {
        positive(&bytes["ferry"][role], &format!("client_bytes.ferry.{role}"));
        positive(&bytes["flat"][role], &format!("client_bytes.flat.{role}"));
    }
    assert_eq!(ferry.len(), 6, "{ferry:?}");
    assert_eq!(ferry.keys().filter(|k| k.starts_with("bins-")).count(), 1);
    assert_eq!(flat.len(), 5, "{flat:?}");
    let sum: u64 = ferry
        .iter()
        .filter(|(k, _)| *k != "total")
        .map(|(_, v)| v.as_u64().expect("byte count"))
        .sum();
    assert_eq!(bytes["ferry"]["total"].as_u64(), Some(sum));
    let ratio = positive(&bytes["ratio"], "client_bytes.ratio");
    assert!(ratio < 1.0, "a binned client fetches less than a flat one");

    // --work-dir is kept, with both repositories in it.
    assert!(work.path().join("ferry/metadata/timestamp.json").exists());
    assert!(work.path().join("flat/metadata/timestamp.json").exists());
}
