//! Ferry's canonical JSON must be byte-identical to securesystemslib's `encode_canonical`, the
//! encoder python-tuf signs over: a single differing byte makes every signature on that
//! document fail to verify on the other side.
#![allow(clippy::unwrap_used)]

use ferry_keys::cjson::{self, CjsonError};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// splitmix64: a fixed seed gives the same documents on every run and every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces strings and keys are made of. Chosen for the ways encoders disagree: the two escaped
/// characters and their neighbours (`"` 0x22 sorts before `#` but its escape `\` 0x5c after),
/// raw control characters, code points whose UTF-16 order differs from their code point order
/// (U+FF61 and U+E000..U+FFFF sort after astral characters in UTF-16), and sequences that
/// Unicode normalisation would change (securesystemslib does not normalise).
const ATOMS: &[&str] = &[
    "a",
    "b",
    "z",
    "A",
    "Z",
    "0",
    "9",
    " ",
    "_",
    "-",
    ".",
    "/",
    "\"",
    "\\",
    "#",
    "!",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "'",
    "\n",
    "\t",
    "\r",
    "\u{0}",
    "\u{1}",
    "\u{8}",
    "\u{c}",
    "\u{1f}",
    "\u{7f}",
    "\u{80}",
    "\u{a0}",
    "é",
    "e\u{301}",
    "\u{212b}",
    "Å",
    "中",
    "文",
    "\u{ff61}",
    "\u{fffd}",
    "\u{e000}",
    "\u{ffff}",
    "😀",
    "\u{10000}",
    "\u{10ffff}",
    "\u{2028}",
    "\u{feff}",
];

fn gen_string(rng: &mut Rng, max_atoms: usize) -> String {
    (0..rng.below(max_atoms + 1))
        .map(|_| ATOMS[rng.below(ATOMS.len())])
        .collect()
}

fn gen_int(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => json!(i64::MIN),
        1 => json!(i64::MAX),
        2 => json!(u64::MAX),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(rng.below(2000) as i64 - 1000),
        6 => json!(rng.next()),
        7 => json!(rng.next() as i64),
        _ => json!(i64::MAX as u64 + 1),
    }
}

fn gen_value(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 6 } else { 9 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => Value::Bool(false),
        3 | 4 => Value::String(gen_string(rng, 6)),
        5 => gen_int(rng),
        6 => Value::Array(
            (0..rng.below(6))
                .map(|_| gen_value(rng, depth - 1))
                .collect(),
        ),
        _ => gen_object(rng, depth - 1),
    }
}

fn gen_object(rng: &mut Rng, depth: usize) -> Value {
    let mut map = serde_json::Map::new();
    for _ in 0..rng.below(9) {
        // Short keys from a small alphabet: shared prefixes and near-collisions are the point.
        let key = gen_string(rng, 3);
        let value = gen_value(rng, depth);
        map.insert(key, value);
    }
    Value::Object(map)
}

/// Documents whose failure would be easiest to explain, then generated ones.
fn documents() -> Vec<Value> {
    let mut docs = vec![
        json!({}),
        json!([]),
        json!(""),
        json!({"": ""}),
        json!({"": {}, "a": [], "b": [[], {}, [{}]]}),
        json!({"\u{ff61}": 1, "😀": 2, "\u{e000}": 3, "\u{10000}": 4, "\u{ffff}": 5}),
        json!({"a\"": 1, "a#": 2, "a\\": 3, "a[": 4, "a]": 5, "a": 6, "a\u{0}": 7, "a!": 8}),
        json!({"e\u{301}": "e\u{301}", "é": "é", "\u{212b}": "\u{212b}", "Å": "Å"}),
        json!({"ctl": "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}", "q": "\"\\\"\\\\", "sl": "a/b"}),
        json!([i64::MIN, i64::MAX, u64::MAX, 0, -0, -1, 1]),
        json!([true, false, null, "null", "true"]),
        json!({"signed": {"_type": "targets", "version": 1, "expires": "2030-01-01T00:00:00Z",
            "spec_version": "1.0.31", "targets": {"ecu/ivi-a53/app-00042.bin": {"length": 42,
            "hashes": {"sha256": "00ff"}, "custom": {"hardwareIds": ["ivi-a53"],
            "releaseCounter": 7, "domain": "app", "name": "analytics-engine", "version": "3.0",
            "provides": {"data-partition.analytics-engine.version": "3.0"}}}}},
            "signatures": [{"keyid": "ab", "sig": "cd"}]}),
    ];
    let mut rng = Rng(0xf3e7_2025);
    for i in 0..400 {
        docs.push(match i % 4 {
            0 => gen_value(&mut rng, 3),
            _ => gen_object(&mut rng, 1 + i % 4),
        });
    }
    docs
}

/// Serialises a `Value` with each object's entries handed to the serializer in a shuffled
/// order. `serde_json::Map` is a `BTreeMap` and always yields keys sorted, which would leave
/// the encoder's re-ordering path (hash maps, flattened fields) untested against python.
struct Shuffled<'a> {
    value: &'a Value,
    seed: u64,
}

impl Serialize for Shuffled<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut rng = Rng(self.seed);
        match self.value {
            Value::Array(items) => {
                let mut seq = ser.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Shuffled {
                        value: item,
                        seed: rng.next(),
                    })?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                for i in (1..entries.len()).rev() {
                    entries.swap(i, rng.below(i + 1));
                }
                let mut out = ser.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(
                        key,
                        &Shuffled {
                            value,
                            seed: rng.next(),
                        },
                    )?;
                }
                out.end()
            }
            other => other.serialize(ser),
        }
    }
}

const ENCODER: &str = r#"
import json, sys
from securesystemslib.formats import encode_canonical
for line in sys.stdin.buffer:
    try:
        out = "ok " + encode_canonical(json.loads(line)).encode("utf-8").hex()
    except Exception as e:
        out = "refused " + type(e).__name__
    sys.stdout.write(out + "\n")
"#;

/// securesystemslib's verdict on each document, in order: `Ok(bytes)` or `Err(reason)`.
fn securesystemslib(docs: &[Value]) -> Vec<Result<Vec<u8>, String>> {
    let mut child = Command::new(ferry_tests::python::python())
        .args(["-c", ENCODER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    // serde_json escapes control characters (and so newlines) inside strings, so each
    // document is exactly one line; python's json module reads the escapes back.
    let mut input = Vec::new();
    for doc in docs {
        serde_json::to_writer(&mut input, doc).unwrap();
        input.push(b'\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread so neither side can block on a full pipe.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let verdicts: Vec<Result<Vec<u8>, String>> = stdout
        .lines()
        .map(|line| {
            let line = line.expect("read python output");
            match line.strip_prefix("ok ") {
                Some(hex) => Ok(unhex(hex)),
                None => Err(line),
            }
        })
        .collect();
    writer.join().unwrap().expect("write documents to python");
    let status = child.wait().unwrap();
    assert!(status.success(), "python encoder exited with {status}");
    assert_eq!(
        verdicts.len(),
        docs.len(),
        "python answered a different number of lines"
    );
    verdicts
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("python wrote hex"))
        .collect()
}

/// Canonical bytes as they are, except that invisible characters (which canonical JSON
/// writes raw) are shown as `\u{..}`.
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{feff}' | '\u{a0}') {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[test]
fn byte_identical_to_securesystemslib() {
    let docs = documents();
    let theirs = securesystemslib(&docs);
    let mut failures = Vec::new();
    for (i, (doc, theirs)) in docs.iter().zip(&theirs).enumerate() {
        let theirs = match theirs {
            Ok(bytes) => bytes,
            Err(reason) => {
                failures.push(format!("#{i}: securesystemslib refused ({reason}) {doc}"));
                continue;
            }
        };
        let sorted = cjson::to_vec(doc);
        let shuffled = cjson::to_vec(&Shuffled {
            value: doc,
            seed: i as u64,
        });
        for (arrival, ours) in [("sorted", sorted), ("shuffled", shuffled)] {
            match ours {
                Ok(ours) if &ours == theirs => {}
                ours => failures.push(format!(
                    "#{i} (keys arriving {arrival}{}):\n  document:         {doc}\n  ferry:            {}\n  securesystemslib: {}",
                    match &ours {
                        Ok(bytes) => format!(
                            ", first difference at byte {}",
                            bytes.iter().zip(theirs).take_while(|(a, b)| a == b).count()
                        ),
                        Err(_) => String::new(),
                    },
                    match &ours {
                        Ok(bytes) => show(bytes),
                        Err(e) => format!("error: {e}"),
                    },
                    show(theirs)
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} documents differ from securesystemslib:\n{}",
        failures.len(),
        docs.len(),
        failures.join("\n")
    );
}

#[test]
fn floats_are_refused_by_both() {
    let docs = vec![
        json!(1.5),
        json!({"a": [1, 2.0]}),
        json!({"length": 3.0}),
        json!([-2.5e10]),
        json!({"z": {"y": [0.1]}}),
    ];
    for (doc, theirs) in docs.iter().zip(securesystemslib(&docs)) {
        assert!(
            matches!(cjson::to_vec(doc), Err(CjsonError::Float(_))),
            "ferry accepted a float: {doc}"
        );
        assert!(theirs.is_err(), "securesystemslib accepted a float: {doc}");
    }
}

#[test]
fn floats_are_refused() {
    #[derive(Serialize)]
    struct Fileinfo {
        length: f64,
    }
    assert!(matches!(cjson::to_vec(&1.5f64), Err(CjsonError::Float(_))));
    assert!(matches!(cjson::to_vec(&0.0f32), Err(CjsonError::Float(_))));
    assert!(matches!(
        cjson::to_vec(&f64::NAN),
        Err(CjsonError::Float(_))
    ));
    assert!(matches!(
        cjson::to_vec(&Fileinfo { length: 42.0 }),
        Err(CjsonError::Float(_))
    ));
    assert!(matches!(
        cjson::to_vec(&json!({"a": [1, 2.0]})),
        Err(CjsonError::Float(_))
    ));
    assert_eq!(
        cjson::to_vec(&json!({"a": [1, 2]})).unwrap(),
        b"{\"a\":[1,2]}"
    );
}

// A typed document and the same document as a `Value` must sign the same bytes: metadata is
// signed from typed structs but verified after parsing, or re-signed by tools that only see
// JSON.

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

/// Declared out of order, with a renamed field and an enum: the order the serializer sees
/// differs from the canonical one at every level.
#[derive(Serialize)]
struct Report {
    version: u32,
    ecu_serial: String,
    #[serde(rename = "Attacks")]
    attacks: Vec<String>,
    domain: Domain,
    last_install: Outcome,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Domain {
    Container,
}

#[derive(Serialize)]
enum Outcome {
    Failed { detail: String, code: i32 },
}

#[test]
fn typed_struct_and_value_give_identical_bytes() {
    let mut extra = BTreeMap::new();
    extra.insert("delegated_from".to_string(), json!("bin-0a"));
    extra.insert("zz-note".to_string(), json!({"b\"": 1, "a\\": [null]}));
    let mut targets = BTreeMap::new();
    targets.insert(
        "ecu/ivi-a53/app-00042.bin".to_string(),
        TargetFile {
            custom: Some(json!({"hardwareIds": ["ivi-a53"], "releaseCounter": 7,
                "domain": "app", "name": "analytics-engine", "version": "3.0",
                "provides": {"data-partition.analytics-engine.version": "3.0"}})),
            hashes: [("sha512", "bb"), ("sha256", "aa")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            length: u64::MAX,
            extra,
        },
    );
    targets.insert(
        "ecu/tcu-r5/rootfs-00007.bin".to_string(),
        TargetFile {
            custom: None,
            hashes: BTreeMap::new(),
            length: 0,
            extra: BTreeMap::new(),
        },
    );
    let typed = Signed {
        signatures: vec![Signature {
            keyid: "k1".into(),
            sig: "5ig".into(),
        }],
        signed: Targets {
            type_: "targets".into(),
            expires: "2030-01-01T00:00:00Z".into(),
            spec_version: "1.0.31".into(),
            targets,
            version: 3,
        },
    };
    let by_hand = json!({
        "signatures": [{"sig": "5ig", "keyid": "k1"}],
        "signed": {"version": 3, "targets": {
            "ecu/tcu-r5/rootfs-00007.bin": {"length": 0, "hashes": {}, "custom": null},
            "ecu/ivi-a53/app-00042.bin": {"zz-note": {"a\\": [null], "b\"": 1},
                "length": u64::MAX, "hashes": {"sha256": "aa", "sha512": "bb"},
                "delegated_from": "bin-0a",
                "custom": {"version": "3.0", "releaseCounter": 7, "provides":
                    {"data-partition.analytics-engine.version": "3.0"}, "name": "analytics-engine",
                    "hardwareIds": ["ivi-a53"], "domain": "app"}}},
            "spec_version": "1.0.31", "expires": "2030-01-01T00:00:00Z", "_type": "targets"}
    });
    let from_typed = cjson::to_vec(&typed).unwrap();
    assert_eq!(
        show(&from_typed),
        show(&cjson::to_vec(&by_hand).unwrap()),
        "typed struct vs hand-written Value"
    );
    let via_value = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        from_typed,
        cjson::to_vec(&via_value).unwrap(),
        "typed struct vs to_value"
    );

    let report = Report {
        version: 2,
        ecu_serial: "ecu-\"1\"".into(),
        attacks: vec![],
        domain: Domain::Container,
        last_install: Outcome::Failed {
            detail: "System not modified".into(),
            code: -1,
        },
    };
    let expected = json!({"Attacks": [], "domain": "container", "ecu_serial": "ecu-\"1\"",
        "last_install": {"Failed": {"code": -1, "detail": "System not modified"}}, "version": 2});
    let ours = cjson::to_vec(&report).unwrap();
    assert_eq!(show(&ours), show(&cjson::to_vec(&expected).unwrap()));
    assert_eq!(
        show(&ours),
        show(b"{\"Attacks\":[],\"domain\":\"container\",\"ecu_serial\":\"ecu-\\\"1\\\"\",\"last_install\":{\"Failed\":{\"code\":-1,\"detail\":\"System not modified\"}},\"version\":2}")
    );
}
