//! Canonical JSON throughput on a 100,000-target TUF targets document, against serde_json's
//! compact writer (the ceiling: same walk, no ordering checks) and olpc-cjson (the crate tough
//! uses). Prints `ferry cjson throughput = R x serde_json compact` once criterion is done.
//!
//! The ratios are read from criterion's own `estimates.json` (mean point estimate) for this
//! run, so the printed line and the criterion report can never disagree; an estimate older
//! than this process (a filtered run, `--profile-time`) is reported as not measured rather
//! than mixed into a ratio.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, SamplingMode, Throughput};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const GROUP: &str = "canonical_json/100k-targets";
const FERRY: &str = "ferry-cjson";
const SERDE: &str = "serde_json-compact";
const OLPC: &str = "olpc-cjson";
const GOAL: f64 = 0.5;

// Fields are declared alphabetically, as in Ferry's metadata schema, so that the encoder's
// in-order fast path is what gets measured.

#[derive(Serialize)]
struct Signed {
    signatures: Vec<Signature>,
    signed: Targets,
}

#[derive(Serialize)]
struct Signature {
    keyid: String,
    sig: String,
}

#[derive(Serialize)]
struct Targets {
    #[serde(rename = "_type")]
    type_: String,
    expires: String,
    spec_version: String,
    targets: BTreeMap<String, TargetFile>,
    version: u64,
}

#[derive(Serialize)]
struct TargetFile {
    custom: Option<Value>,
    hashes: BTreeMap<String, String>,
    length: u64,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// splitmix64: deterministic lengths and counters without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn document(entries: usize) -> Signed {
    const HW: [&str; 6] = [
        "ivi-a53", "tcu-r5", "adas-a72", "bcm-m4", "gw-a55", "hud-a35",
    ];
    const DOMAINS: [(&str, &str); 3] = [("app", "app"), ("os", "rootfs"), ("container", "stack")];
    let mut rng = Rng(0x5eed_f0e5);
    let mut targets = BTreeMap::new();
    for i in 0..entries {
        let hw = HW[i % HW.len()];
        let (domain, stem) = DOMAINS[(i / HW.len()) % DOMAINS.len()];
        let path = format!("ecu/{hw}/{stem}-{i:05}.bin");
        let name = format!("{hw}-{stem}-{}", i % 97);
        let version = format!("{}.{}.{}", rng.below(5), rng.below(20), rng.below(100));
        let provides_key = match domain {
            "os" => "rootfs-image.version".to_string(),
            _ => format!("data-partition.{name}.version"),
        };
        let custom = json!({
            "domain": domain,
            "hardwareIds": [hw],
            "name": name,
            "provides": {provides_key: version},
            "releaseCounter": rng.below(1000),
            "version": version,
        });
        let mut hashes = BTreeMap::new();
        hashes.insert(
            "sha256".into(),
            hex::encode(Sha256::digest(path.as_bytes())),
        );
        hashes.insert(
            "sha512".into(),
            hex::encode(Sha512::digest(path.as_bytes())),
        );
        // One target in a hundred carries an unrecognised field that TUF says must be kept;
        // its key sorts between declared fields, so the re-ordering path is exercised too.
        let mut extra = BTreeMap::new();
        if i % 100 == 0 {
            extra.insert(
                "delegated_from".into(),
                json!(format!("bin-{:02x}", i % 256)),
            );
        }
        let file = TargetFile {
            custom: Some(custom),
            hashes,
            length: 4096 + rng.below(64 << 20),
            extra,
        };
        targets.insert(path, file);
    }
    let signatures = (0..2u8)
        .map(|k| Signature {
            keyid: hex::encode(Sha256::digest([k])),
            sig: hex::encode(Sha512::digest([k])),
        })
        .collect();
    Signed {
        signatures,
        signed: Targets {
            type_: "targets".into(),
            expires: "2031-01-01T00:00:00Z".into(),
            spec_version: "1.0.31".into(),
            targets,
            version: 42,
        },
    }
}

fn ferry(doc: &Signed) -> Vec<u8> {
    ferry_keys::cjson::to_vec(doc).unwrap()
}

fn serde_compact(doc: &Signed) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap()
}

fn olpc(doc: &Signed) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    doc.serialize(&mut ser).unwrap();
    out
}

/// Where criterion writes its reports, resolved the way criterion does, and handed to it, so
/// both sides agree even when `CARGO_TARGET_DIR` or `CRITERION_HOME` is set.
fn criterion_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("criterion")
}

/// Mean nanoseconds per iteration, if criterion measured `function` after `since`.
fn mean_ns(home: &Path, function: &str, since: SystemTime) -> Option<f64> {
    // criterion's make_filename_safe, for the characters our ids use.
    let path = home
        .join(GROUP.replace('/', "_"))
        .join(function)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

fn main() {
    // cargo bench passes --bench; cargo test --benches does not, and criterion then runs each
    // function once as a smoke test, for which a small document is enough.
    let args: Vec<String> = std::env::args().collect();
    let benchmarking =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list");
    let entries = if benchmarking { 100_000 } else { 1_000 };

    let doc = document(entries);
    let ours = ferry(&doc);
    assert!(
        ours == olpc(&doc),
        "ferry cjson and olpc-cjson disagree on the benchmark document: refusing to time a wrong encoder"
    );
    let compact_len = serde_compact(&doc).len();
    println!(
        "{GROUP}: document of {entries} targets, {} bytes canonical, {compact_len} bytes compact",
        ours.len()
    );

    let home = criterion_home();
    // Flat sampling: an olpc-cjson iteration takes long enough that criterion's linear
    // sampling (1+2+..+n iterations) would not fit the time budget.
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    // Estimate files are compared against this; filesystem mtimes can be coarse, so allow slack.
    let started = SystemTime::now() - Duration::from_secs(1);
    {
        let mut group = criterion.benchmark_group(GROUP);
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Bytes(ours.len() as u64));
        group.bench_function(FERRY, |b| b.iter(|| ferry(black_box(&doc))));
        group.bench_function(SERDE, |b| b.iter(|| serde_compact(black_box(&doc))));
        group.bench_function(OLPC, |b| b.iter(|| olpc(black_box(&doc))));
        group.finish();
    }
    criterion.final_summary();

    if !benchmarking {
        return;
    }
    let ferry_ns = mean_ns(&home, FERRY, started);
    let serde_ns = mean_ns(&home, SERDE, started);
    let olpc_ns = mean_ns(&home, OLPC, started);
    // Ratio of time per document rather than of bytes per second: a document with escapes or
    // control characters differs in length between the two forms, and would skew the latter.
    let ratio = |ns: Option<f64>| match (serde_ns, ns) {
        (Some(base), Some(t)) if t > 0.0 => format!("{:.2} x", base / t),
        _ => "not measured in this run".to_string(),
    };
    let verdict = match (serde_ns, ferry_ns) {
        (Some(base), Some(t)) if base / t >= GOAL => "ok",
        (Some(_), Some(_)) => "BELOW GOAL",
        _ => "no verdict",
    };
    println!(
        "{GROUP}: ferry cjson throughput = {} serde_json compact (goal >= {GOAL}, {verdict}); olpc-cjson = {}",
        ratio(ferry_ns),
        ratio(olpc_ns)
    );
    let ms = |ns: Option<f64>| ns.map_or("-".to_string(), |ns| format!("{:.1} ms", ns / 1e6));
    println!(
        "{GROUP}: mean per document: ferry cjson {}, serde_json compact {}, olpc-cjson {}",
        ms(ferry_ns),
        ms(serde_ns),
        ms(olpc_ns)
    );
}
