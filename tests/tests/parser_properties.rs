//! Stable property tests of every parser that reads outside bytes: the CI counterpart of the
//! cargo-fuzz targets in fuzz/ (nightly only), over the same harnesses
//! (`ferry_tests::parsers`). Each parser gets random bytes and mutations of a valid input,
//! and must answer with an error or a value, never a panic; canonical JSON must also be a
//! fixed point of parse-and-canonicalise.
#![allow(clippy::unwrap_used)]

use ferry_tests::parsers;
use proptest::prelude::*;

/// Valid inputs to mutate, so the cases get past the first parse.
const ROOT: &str = r#"{"signatures":[{"keyid":"ab","sig":"00"}],"signed":{"_type":"root","spec_version":"1.0.0","version":1,"expires":"2030-01-01T00:00:00Z","consistent_snapshot":true,"keys":{},"roles":{"root":{"keyids":["ab"],"threshold":1}}}}"#;
const TARGETS: &str = r#"{"signatures":[],"signed":{"_type":"targets","spec_version":"1.0.0","version":2,"expires":"2030-01-01T00:00:00Z","targets":{"a/b.bin":{"length":3,"hashes":{"sha256":"00"},"custom":{"ecuIdentifiers":{"ivi-1":{"hardwareId":"ivi-a53"}}}}},"delegations":{"keys":{},"roles":[{"name":"x","keyids":[],"threshold":1,"paths":["a/*"],"terminating":false}]},"custom":{"vin":"VIN-FUZZ"}}}"#;
const MANIFEST: &str = r#"{"signatures":[{"keyid":"ab","sig":"00"}],"signed":{"vin":"VIN-FUZZ","primary_ecu_serial":"ivi-1","ecu_version_manifests":{"ivi-1":{"signatures":[],"signed":{"ecu_serial":"ivi-1","time":"2026-12-01T00:00:00Z","nonce":"n","installed_image":{"filepath":"a","fileinfo":{"length":0,"hashes":{}}},"attacks_detected":""}}}}}"#;
const BUNDLE: &str = r#"{"director":{"root":[],"timestamp":"{}","snapshot":"{}","targets":"{\"signatures\":[],\"signed\":{}}"},"image":{"targets":"{}"}}"#;
const STATUS: &str = r#"{"installed":{"target":"a","length":1,"hashes":{"sha256":"00"},"custom":{}},"installed_domains":{},"provides":{"k":"v"},"last_install":{"target":"a","result":"rolled-back","detail":"d"},"release_counters":{"target:a":3},"rebootPending":true,"target":"a"}"#;
const SIGNATURE: &str = r#"{"ferry_signature":1,"proposal_sha256":"00","role":"root","version":1,"keyid":"ab","sig":"00"}"#;
const CONFIG: &str = "vin = \"V\"\nserial = \"s\"\nhardware_id = \"h\"\nkey = \"k\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\napps_dir = \"a\"\n[director]\nurl = \"http://127.0.0.1:1\"\nroot = \"r\"\n[os]\nslots = [\"a\", \"b\"]\n";

/// RFC 8032's first Ed25519 test key, as `ferry key pub` prints it, and the `--json` form.
const TUF_KEY: &str = r#"{"keytype":"ed25519","keyval":{"public":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"},"scheme":"ed25519"}"#;
const TUF_KEY_WRAPPED: &str = r#"{"keyid":"x","public":{"keytype":"ecdsa","keyval":{"public":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"},"scheme":"ecdsa-sha2-nistp256"}}"#;
const PKCS11_URI: &str = "pkcs11:token=ferry;object=root-1;id=%01%ab;type=private;slot-id=3;serial=42;library-version=2.6?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:///run/pin.txt";

/// What RAUC 1.8 printed in the tests (`rauc status --detailed`, `rauc info`).
const RAUC_STATUS: &str = r#"{"compatible":"ferry-test","variant":"","booted":"A","boot_primary":"rootfs.1","slots":[{"rootfs.1":{"class":"rootfs","device":"/tmp/b","type":"raw","bootname":"B","state":"inactive","boot_status":"good","slot_status":{"bundle":{"compatible":"ferry-test","version":"2"},"checksum":{"sha256":"72","size":65536}}}},{"rootfs.0":{"class":"rootfs","bootname":"A","state":"booted"}}]}"#;
const RAUC_INFO: &str = r#"{"compatible":"ferry-test","version":"2","images":[{"rootfs":{"variant":null,"filename":"rootfs.img","checksum":"72","size":65536,"hooks":[],"adaptive":[]}}]}"#;

fn run(name: &str, data: &[u8]) {
    let (_, harness) = parsers::ALL.iter().find(|(n, _)| *n == name).unwrap();
    harness(data);
}

/// `seed` with up to 16 bytes flipped, inserted or deleted.
fn mutated(seed: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<u8>(), any::<u16>(), 0u8..3), 0..16).prop_map(move |edits| {
        let mut bytes = seed.as_bytes().to_vec();
        for (byte, at, kind) in edits {
            let i = at as usize % (bytes.len() + 1);
            match kind {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => {}
            }
        }
        bytes
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn metadata_never_panics(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), mutated(ROOT), mutated(TARGETS)]) {
        run("metadata", &data);
    }

    #[test]
    fn manifests_never_panic(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), mutated(MANIFEST)]) {
        run("manifest", &data);
    }

    #[test]
    fn canonical_json_is_a_fixed_point(value in json_value(), raw in mutated(TARGETS)) {
        run("canonical_json", &serde_json::to_vec(&value).unwrap());
        run("canonical_json", &raw);
    }

    #[test]
    fn secondary_bundles_never_panic(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..1024), mutated(BUNDLE)]) {
        run("secondary_bundle", &data);
    }

    #[test]
    fn secondary_answers_never_panic(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..1024), mutated(STATUS)]) {
        run("secondary_answers", &data);
    }

    #[test]
    fn configs_never_panic(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..1024), mutated(CONFIG)]) {
        run("configs", &data);
    }

    #[test]
    fn proposals_and_signatures_never_panic(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..1024), mutated(parsers::proposal_seed()), mutated(SIGNATURE)]) {
        run("proposal", &data);
    }

    #[test]
    fn tuf_keys_never_panic_and_read_back(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..512), mutated(TUF_KEY), mutated(TUF_KEY_WRAPPED)]) {
        run("tuf_key", &data);
    }

    #[test]
    fn pkcs11_uris_never_panic_and_redact_to_a_fixed_point(
        data in prop_oneof![prop::collection::vec(any::<u8>(), 0..256), mutated(PKCS11_URI)],
        value in "[ -~]{0,24}",
    ) {
        run("pkcs11_uri", &data);
        // Whatever printable text an attribute holds, once percent-encoded.
        let encoded: String = value.bytes().map(|b| format!("%{b:02x}")).collect();
        for attr in ["token", "object", "id", "serial"] {
            run("pkcs11_uri", format!("pkcs11:{attr}={encoded}?pin-source={value}").as_bytes());
        }
        run("pkcs11_uri", format!("pkcs11:object=k?pin-value={encoded}").as_bytes());
    }

    #[test]
    fn mender_artifacts_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096), content in prop::collection::vec(any::<u8>(), 0..64), edits in prop::collection::vec((any::<u8>(), any::<u16>()), 0..8)) {
        run("mender_artifact", &data);
        // A valid artifact with bytes flipped anywhere: in its tar headers, its manifest,
        // its header JSON, its payload.
        let mut seed = parsers::mender_seed(&content);
        for (byte, at) in edits {
            let i = at as usize % seed.len();
            seed[i] = byte;
        }
        run("mender_artifact", &seed);
    }

    #[test]
    fn oci_archives_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096), tar in tar_archive()) {
        run("oci_archive", &data);
        run("oci_archive", &tar);
    }

    #[test]
    fn rootfs_archives_never_panic_nor_write_outside_the_root(data in prop::collection::vec(any::<u8>(), 0..4096), tar in tar_archive()) {
        run("rootfs_archive", &data);
        run("rootfs_archive", &tar);
    }

    #[test]
    fn ostree_delta_superblocks_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        run("ostree_delta", &data);
    }

    #[test]
    fn rauc_outputs_never_panic(data in prop_oneof![prop::collection::vec(any::<u8>(), 0..1024), mutated(RAUC_STATUS), mutated(RAUC_INFO)]) {
        run("rauc_output", &data);
    }
}

/// The seed itself reads: the property test mutates a valid artifact, not noise.
#[test]
fn the_mender_seed_is_a_valid_artifact() {
    let artifact = ferry_secondary::mender::read(
        parsers::mender_seed(b"payload").as_slice(),
        &ferry_secondary::mender::Limits::default(),
        &mut ferry_secondary::mender::DiscardPayload,
    )
    .unwrap();
    assert_eq!(artifact.files, [("file".to_owned(), 7)]);
}

/// Found by the pkcs11_uri fuzz target: "=" may stand unencoded in a path value, but the
/// redacted form encodes it, so a URI just under the length cap redacts to one over it.
#[test]
fn a_pkcs11_uri_whose_redacted_form_outgrows_the_length_cap() {
    let uri = format!("pkcs11:object={}", "=".repeat(1500));
    assert!(uri.len() <= ferry_keys::Pkcs11Uri::MAX_LEN);
    run("pkcs11_uri", uri.as_bytes());
}

/// A real tar of an OCI layout with one entry's content from the strategy.
fn tar_archive() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(any::<u8>(), 0..256), "[a-z/.]{1,20}").prop_map(|(content, name)| {
        let mut out = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut out);
            for (path, body) in [
                ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
                (name.as_str(), content),
            ] {
                let mut header = tar::Header::new_gnu();
                header.set_size(body.len() as u64);
                header.set_mode(0o644);
                if header.set_path(path).is_err() {
                    continue;
                }
                header.set_cksum();
                let _ = builder.append(&header, body.as_slice());
            }
            let _ = builder.finish();
        }
        out
    })
}
