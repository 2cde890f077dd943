//! One entry point per parser that takes outside bytes, shared by the cargo-fuzz targets
//! (`fuzz/`, nightly) and the stable property test (`tests/tests/parser_properties.rs`, CI).
//! Each takes any bytes and must return without panicking, whatever they hold; where a parser
//! has a property beyond that (canonical JSON is a fixed point), it is asserted here.

use chrono::{DateTime, TimeZone, Utc};
use ferry_core::manifest::{
    check_vehicle_manifest, EcuVersionReport, RegisteredVehicle, VehicleManifest,
};
use ferry_core::metadata::{Parsed, Root, Snapshot, Targets, Timestamp};
use ferry_core::TrustedSet;
use ferry_keys::{IdentifiedKey, KeyKind, PrivateKey};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

/// The instant every harness verifies at: fixed, so a run is reproducible.
pub fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Every TUF role parser, and a trusted set started from the bytes as a root.
pub fn metadata(data: &[u8]) {
    let _ = Parsed::<Root>::from_bytes(data);
    let _ = Parsed::<Timestamp>::from_bytes(data);
    let _ = Parsed::<Snapshot>::from_bytes(data);
    let _ = Parsed::<Targets>::from_bytes(data);
    let _ = Parsed::<ferry_core::metadata::OfflineSnapshot>::from_bytes(data);
    let _ = Parsed::<ferry_core::metadata::OfflineTargets>::from_bytes(data);
    if let Ok(mut set) = TrustedSet::new(data, at()) {
        // A root that verifies against itself: feed the same bytes on as the next roles.
        let _ = set.update_root(data);
        let _ = set.update_timestamp(data);
    }
    if let Ok(mut set) = TrustedSet::new_offline(data, at()) {
        // PURE-2: the same bytes as the bundle's snapshot (no timestamp in this mode).
        let _ = set.update_snapshot(data, false);
    }
}

fn vehicle() -> &'static RegisteredVehicle {
    static VEHICLE: OnceLock<RegisteredVehicle> = OnceLock::new();
    VEHICLE.get_or_init(|| {
        let mut ecu_keys = BTreeMap::new();
        for serial in ["ivi-1", "tcu-1"] {
            if let Ok(key) = PrivateKey::generate(KeyKind::Ed25519) {
                if let Ok(id) = IdentifiedKey::new(key.public_key().clone()) {
                    ecu_keys.insert(serial.to_owned(), id);
                }
            }
        }
        RegisteredVehicle {
            vin: "VIN-FUZZ".into(),
            primary_ecu_serial: "ivi-1".into(),
            ecu_keys,
        }
    })
}

/// A vehicle version manifest and the ECU version reports inside it, as the Director reads
/// them.
pub fn manifest(data: &[u8]) {
    let _ = Parsed::<VehicleManifest>::from_bytes(data);
    let _ = Parsed::<EcuVersionReport>::from_bytes(data);
    let _ = check_vehicle_manifest(data, vehicle());
}

/// Canonical JSON: whatever JSON parses has a canonical form or a named error, and the form is
/// a fixed point (parsed again, it canonicalises to the same bytes), so signer and verifier
/// agree on the bytes. The OLPC dialect escapes only `"` and `\`, so a string with a control
/// character canonicalises to bytes that are not JSON (as securesystemslib's do): those are
/// not parsed back.
pub fn canonical_json(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(once) = ferry_core::cjson::to_vec(&value) else {
        return;
    };
    if once.iter().any(|b| *b < 0x20) {
        return;
    }
    let again: serde_json::Value = match serde_json::from_slice(&once) {
        Ok(v) => v,
        Err(e) => panic!("canonical JSON does not parse back: {e}"),
    };
    let twice = ferry_core::cjson::to_vec(&again).ok();
    assert_eq!(
        twice.as_deref(),
        Some(&once[..]),
        "canonical JSON is not a fixed point"
    );
}

/// The Secondary's metadata bundle, received by a real ECU (its public API, as the daemon
/// and the Primary call it) in both modes: full verification against self-signed roots, and
/// partial verification against a pinned Director targets key. Neither can be satisfied by
/// outside bytes (the keys are made here), so every bundle is refused and the trusted
/// metadata stays empty from one input to the next.
pub fn secondary_bundle(data: &[u8]) {
    let _ = SECONDARY_ECUS.try_with(|ecus| {
        let Some(ecus) = ecus else { return };
        let Ok(mut ecus) = ecus.try_borrow_mut() else {
            return;
        };
        for ecu in &mut ecus.ecus {
            let _ = ecu.receive_metadata(data, at());
        }
    });
}

/// The ECUs [`secondary_bundle`] feeds, with the directory their keys, anchors and state
/// live in (removed when the thread ends).
#[derive(Debug)]
struct SecondaryEcus {
    _dir: tempfile::TempDir,
    ecus: Vec<ferry_secondary::Ecu>,
}

thread_local! {
    /// Made once per thread: opening an ECU creates its state, which is not per input work.
    static SECONDARY_ECUS: Option<std::cell::RefCell<SecondaryEcus>> =
        secondary_ecus().map(std::cell::RefCell::new);
}

/// One ECU with full verification and one with partial, configured as a Secondary is
/// (`secondary.toml`), in a fresh temporary directory.
fn secondary_ecus() -> Option<SecondaryEcus> {
    use ferry_secondary::{Config, Ecu, VerificationMode};
    let dir = tempfile::tempdir().ok()?;
    let root = dir.path();
    let key = root.join("ecu.key.pem");
    PrivateKey::generate(KeyKind::Ed25519)
        .ok()?
        .write_file(&key, None)
        .ok()?;
    let shipped_root = root.join("root.json");
    std::fs::write(&shipped_root, fixture_root()?).ok()?;
    let targets_key = root.join("director-targets.pub.json");
    let pinned = vehicle().ecu_keys.get("ivi-1")?.key();
    std::fs::write(&targets_key, serde_json::to_vec(pinned).ok()?).ok()?;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let mut ecus = Vec::new();
    for (name, verification) in [
        ("full", VerificationMode::Full),
        ("partial", VerificationMode::Partial),
    ] {
        let config = Config {
            vin: "VIN-FUZZ".into(),
            serial: "ivi-1".into(),
            hardware_id: "ivi-a53".into(),
            key: key.clone(),
            listen,
            data_dir: root.join(name).join("data"),
            verification,
            director_root: Some(shipped_root.clone()),
            image_root: Some(shipped_root.clone()),
            director_targets_key: Some(targets_key.clone()),
            // The offline path of a partial ECU parses bundles too.
            offline_targets_key: Some(targets_key.clone()),
            apps_dir: root.join(name).join("apps"),
            app_health_check: None,
            app_health_timeout_secs: None,
            app: Default::default(),
            confirm_api: None,
            max_metadata_bytes: ferry_secondary::config::DEFAULT_MAX_METADATA_BYTES,
            http: Default::default(),
            tls: None,
            initial_provides: BTreeMap::new(),
            os: None,
            ostree: None,
            snapshot: None,
            rauc: None,
            container: Default::default(),
            modules: Default::default(),
        };
        ecus.push(Ecu::open_at(config, at()).ok()?);
    }
    Some(SecondaryEcus { _dir: dir, ecus })
}

/// A self-signed root, made once: what a Secondary ships with.
fn fixture_root() -> Option<Vec<u8>> {
    static ROOT: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let key = PrivateKey::generate(KeyKind::Ed25519).ok()?;
        let id = key.key_id().clone();
        let role = serde_json::json!({"keyids": [id.as_str()], "threshold": 1});
        let signed = serde_json::json!({"_type": "root", "spec_version": "1.0.0", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "consistent_snapshot": true,
            "keys": {id.as_str(): key.public_key()},
            "roles": {"root": role, "timestamp": role, "snapshot": role, "targets": role}});
        let root: Root = serde_json::from_value(signed).ok()?;
        let mut doc = ferry_core::metadata::Signed::new(root);
        doc.sign(&key).ok()?;
        doc.to_bytes().ok()
    })
    .clone()
}

/// An OCI image-layout archive (tar) as the container installer checks it.
pub fn oci_archive(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let archive = dir.path().join("image.tar");
    let incoming = dir.path().join("incoming");
    if std::fs::write(&archive, data).is_err() || std::fs::create_dir(&incoming).is_err() {
        return;
    }
    let _ = ferry_secondary::install::container::oci::check_archive(
        &archive,
        data.len() as u64,
        &incoming,
        &|_| None,
    );
}

/// A Mender artifact as the ECU's module installer and `ferry repo add-target --from-mender`
/// read it (headers only, whole with its payload, and a module target's plain tar).
pub fn mender_artifact(data: &[u8]) {
    use ferry_secondary::mender::{self, DiscardPayload, Limits};
    let limits = Limits::default();
    let _ = mender::read_headers(data, &limits);
    let _ = mender::read(data, &limits, &mut DiscardPayload);
    let _ = mender::read_plain_tar(data, &limits, &mut DiscardPayload);
}

/// A tar of `files` (name, bytes); names the tar crate refuses are left out.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut out);
        for (path, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            if header.set_path(path).is_err() {
                continue;
            }
            header.set_cksum();
            let _ = builder.append(&header, *body);
        }
        let _ = builder.finish();
    }
    out
}

/// A valid, uncompressed Mender artifact (format 3, one single-file payload holding
/// `content`), to mutate.
pub fn mender_seed(content: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let version = br#"{"format":"mender","version":3}"#;
    let header = tar_of(&[
        ("header-info", br#"{"payloads":[{"type":"single-file"}],"artifact_provides":{"artifact_name":"a-1"},"artifact_depends":{"device_type":["hw"]}}"#),
        ("headers/0000/type-info", br#"{"type":"single-file","artifact_provides":{"rootfs-image.single-file.version":"a-1"},"clears_artifact_provides":["rootfs-image.single-file.*"]}"#),
        ("headers/0000/meta-data", br#"{"k":"v"}"#),
    ]);
    let data = tar_of(&[("file", content)]);
    let line =
        |bytes: &[u8], name: &str| format!("{}  {name}\n", hex::encode(Sha256::digest(bytes)));
    let manifest = [
        line(content, "data/0000/file"),
        line(&header, "header.tar"),
        line(version, "version"),
    ]
    .concat();
    tar_of(&[
        ("version", version),
        ("manifest", manifest.as_bytes()),
        ("header.tar", &header),
        ("data/0000.tar", &data),
    ])
}

/// What a Primary reads from a Secondary over the in-vehicle network (each answer of its HTTP
/// API), as the Primary deserializes it.
pub fn secondary_answers(data: &[u8]) {
    let _ = serde_json::from_slice::<ferry_secondary::Info>(data);
    let _ = serde_json::from_slice::<ferry_secondary::Status>(data);
    let _ = serde_json::from_slice::<ferry_secondary::wire::MetadataAccepted>(data);
    let _ = serde_json::from_slice::<ferry_secondary::wire::ImageReceived>(data);
    let _ = serde_json::from_slice::<ferry_secondary::Installed>(data);
    let _ = Parsed::<EcuVersionReport>::from_bytes(data);
}

/// `data` as a config file named `name` in a fresh directory, loaded by `load`.
fn config_file<T, E>(data: &[u8], name: &str, load: impl Fn(&Path) -> Result<T, E>) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join(name);
    let Ok(mut file) = std::fs::File::create(&path) else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let _ = load(&path);
}

/// director.toml, primary.toml and secondary.toml.
pub fn configs(data: &[u8]) {
    config_file(
        data,
        "director.toml",
        ferry_director::config::DirectorConfig::load,
    );
    config_file(data, "primary.toml", ferry_primary::Config::load);
    config_file(data, "secondary.toml", ferry_secondary::Config::load);
}

/// A harness: any bytes in, nothing out, never a panic.
pub type Harness = fn(&[u8]);

/// Key-ceremony files: a proposal (and everything later steps compute from it: requirements,
/// summary, a status with no signatures) and a holder's detached signature, counted against a
/// fixed proposal.
pub fn proposal(data: &[u8]) {
    use ferry_core::proposal::{DetachedSignature, Proposal};
    if let Ok(p) = Proposal::from_bytes(data) {
        let _ = p.requirements();
        let _ = p.summary().map(|s| s.to_string());
        let _ = p.status(&[]);
        let _ = p.merge(&[]);
    }
    if let Ok(sig) = DetachedSignature::from_bytes(data) {
        if let Ok(p) = Proposal::from_bytes(proposal_seed().as_bytes()) {
            let _ = p.status(std::slice::from_ref(&sig));
            let _ = p.merge(&[sig]);
        }
    }
}

/// A valid root proposal (version 1, one ed25519 key for every role), to mutate.
pub fn proposal_seed() -> &'static str {
    static SEED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        use ferry_core::metadata::{Expires, RoleKeys, Root, SPEC_VERSION};
        use ferry_core::proposal::{Proposal, RepositoryKind};
        let public = ferry_keys::PublicKey::new(ferry_keys::Scheme::Ed25519, "ab".repeat(32));
        let Ok(id) = public.key_id() else {
            return String::new();
        };
        let roles = ferry_core::layout::TOP_LEVEL_ROLES
            .iter()
            .map(|r| {
                let keys = RoleKeys {
                    keyids: vec![id.clone()],
                    threshold: 1,
                    extra: Default::default(),
                };
                (r.to_string(), keys)
            })
            .collect();
        let root = Root {
            type_: "root".into(),
            consistent_snapshot: true,
            expires: Expires::after(at(), chrono::Duration::days(365)),
            keys: [(id, public)].into(),
            roles,
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: Default::default(),
        };
        Proposal::root(RepositoryKind::Director, &root, None)
            .and_then(|p| p.to_bytes())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    })
}

/// TUF key JSON as every command taking a public key reads it (`ferry repo delegate --key`):
/// a key or a named error. A key it returns has a key id and, written back as JSON, reads as
/// the same key.
pub fn tuf_key(data: &[u8]) {
    let Ok(key) = ferry_keys::PublicKey::from_tuf_json(data) else {
        return;
    };
    let written = serde_json::to_vec(&key).expect("a key that was read serialises");
    let again = ferry_keys::PublicKey::from_tuf_json(&written).expect("a written key reads back");
    assert_eq!(again, key);
    assert_eq!(
        again.key_id().expect("key id"),
        key.key_id().expect("key id")
    );
}

/// `pkcs11:` URIs (RFC 7512) as every command taking a key reads them: a URI or a named error.
/// The redacted form of a URI without `pin-value` is a URI that parses to the same selection
/// (its redacted form is a fixed point) unless encoding made it longer than the length cap;
/// with `pin-value` it shows no PIN and does not parse.
pub fn pkcs11_uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = ferry_keys::Pkcs11Uri::parse(text) else {
        return;
    };
    let shown = uri.redacted();
    if matches!(uri.pin, ferry_keys::pkcs11::PinSource::Value(_)) {
        assert!(shown.contains("pin-value=<hidden>"), "{shown}");
        assert!(
            ferry_keys::Pkcs11Uri::parse(&shown).is_err(),
            "a hidden PIN must not parse as a PIN: {shown}"
        );
        return;
    }
    if shown.len() > ferry_keys::Pkcs11Uri::MAX_LEN {
        // Percent-encoding ("=" becomes "%3D") can grow a URI past the length cap; that
        // refusal is the cap doing its job, not a redacted form that fails to read back.
        return;
    }
    let again = ferry_keys::Pkcs11Uri::parse(&shown)
        .unwrap_or_else(|e| panic!("the redacted form {shown:?} of {text:?} does not parse: {e}"));
    assert_eq!(again.redacted(), shown, "from {text:?}");
}

/// A root file system archive (tar, or tar.zst by its magic) applied onto an empty root with
/// `/etc` merged, as the snapshot domain applies a verified target: never panics, and nothing
/// appears beside the root, whatever the entries' paths, links and types.
pub fn rootfs_archive(data: &[u8]) {
    use ferry_secondary::install::snapshot::{apply, open_archive, Local};
    let Ok(dir) = tempfile::tempdir() else { return };
    let file = dir.path().join("rootfs.tar");
    let root = dir.path().join("root");
    if std::fs::write(&file, data).is_err() || std::fs::create_dir(&root).is_err() {
        return;
    }
    let local = Local {
        merge_etc: true,
        keep: [std::path::PathBuf::from("etc/hostname")].into(),
    };
    if let Ok(reader) = open_archive(&file) {
        let _ = apply(reader, &root, &local);
    }
    let mut beside: Vec<String> = std::fs::read_dir(dir.path())
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    beside.sort();
    assert_eq!(
        beside,
        ["root", "rootfs.tar"],
        "an archive wrote outside its root"
    );
}

/// What `rauc info` and `rauc status` print (JSON), as the rauc domain reads it.
pub fn rauc_output(data: &[u8]) {
    use ferry_secondary::install::rauc::{parse_info, parse_status};
    let text = String::from_utf8_lossy(data);
    if let Ok(info) = parse_info(&text) {
        let _ = info.image_for("rootfs");
    }
    if let Ok(status) = parse_status(&text) {
        let _ = status.booted_slot();
        if let Some(primary) = &status.boot_primary {
            let _ = status.slot(primary).and_then(|s| s.installed_sha256());
        }
    }
}

/// An OSTree static delta superblock, as `ferry repo add-target --ostree-delta` reads the
/// commits from one: the whole of `data` is the file.
pub fn ostree_delta(data: &[u8]) {
    use ferry_core::ostree_delta::{delta_commits, offset_size, MAX_HEAD};
    let len = data.len() as u64;
    let size = 3 * offset_size(len);
    let tail = &data[data.len().saturating_sub(size)..];
    let head = &data[..data.len().min(MAX_HEAD as usize)];
    if let Ok((from, to)) = delta_commits(len, tail, head) {
        assert_eq!(to.len(), 64);
        assert!(from.is_none_or(|f| f.len() == 64));
    }
}

/// Every harness by name: what `fuzz/` builds a target for and the property test runs.
pub const ALL: &[(&str, Harness)] = &[
    ("metadata", metadata),
    ("manifest", manifest),
    ("canonical_json", canonical_json),
    ("secondary_bundle", secondary_bundle),
    ("oci_archive", oci_archive),
    ("mender_artifact", mender_artifact),
    ("configs", configs),
    ("secondary_answers", secondary_answers),
    ("proposal", proposal),
    ("tuf_key", tuf_key),
    ("pkcs11_uri", pkcs11_uri),
    ("rootfs_archive", rootfs_archive),
    ("rauc_output", rauc_output),
    ("ostree_delta", ostree_delta),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness reaches both ECUs: they open, and a bundle they refuse is recorded.
    #[test]
    fn the_secondary_bundle_harness_feeds_an_ecu_in_each_mode() {
        secondary_bundle(b"{}");
        let refused = SECONDARY_ECUS.with(|ecus| {
            ecus.as_ref().map(|ecus| {
                ecus.borrow()
                    .ecus
                    .iter()
                    .map(|ecu| ecu.status().map(|s| s.last_install.map(|o| o.target)))
                    .collect::<Vec<_>>()
            })
        });
        let Some(refused) = refused else {
            panic!("the harness's ECUs did not open");
        };
        assert_eq!(refused.len(), 2);
        for r in refused {
            assert_eq!(r.ok().flatten().as_deref(), Some("metadata bundle"));
        }
    }
}
