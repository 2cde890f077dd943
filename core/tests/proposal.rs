//! Key-ceremony proposals: signing by holders, status, merge, and what merge refuses.
#![allow(clippy::unwrap_used)]

mod common;

use common::{expires_in, key, key_map, now, role_keys, sign, target_file};
use ferry_core::metadata::{Root, Targets, SPEC_VERSION};
use ferry_core::proposal::{
    DetachedSignature, Proposal, RepositoryKind, RootChanges, SignatureVerdict,
};
use ferry_core::{Error, TrustedSet};
use ferry_keys::PrivateKey;
use std::collections::BTreeMap;

fn root_v1(root_keys: &[&PrivateKey], threshold: u32, online: &PrivateKey) -> Root {
    let mut keys = key_map(root_keys);
    keys.extend(key_map(&[online]));
    Root {
        type_: "root".into(),
        consistent_snapshot: true,
        expires: expires_in(365),
        keys,
        roles: [
            ("root".to_owned(), role_keys(root_keys, threshold)),
            ("targets".to_owned(), role_keys(&[online], 1)),
            ("snapshot".to_owned(), role_keys(&[online], 1)),
            ("timestamp".to_owned(), role_keys(&[online], 1)),
        ]
        .into(),
        spec_version: SPEC_VERSION.into(),
        version: 1,
        extra: BTreeMap::new(),
    }
}

struct Ceremony {
    old: [PrivateKey; 3],
    new: [PrivateKey; 3],
    v1: Vec<u8>,
    proposal: Proposal,
}

/// Root v1 with threshold 2 of three keys; a proposal for v2 with three new keys, threshold 2.
fn rotation() -> Ceremony {
    let old = [key(), key(), key()];
    let new = [key(), key(), key()];
    let online = key();
    let root = root_v1(&[&old[0], &old[1], &old[2]], 2, &online);
    let v1 = sign(&root, &[&old[0], &old[1], &old[2]]);
    let mut changes = RootChanges {
        expires: Some(expires_in(365)),
        ..Default::default()
    };
    for k in &old {
        changes.remove.push(("root".into(), k.key_id().clone()));
    }
    for k in &new {
        changes.add.push(("root".into(), k.public_key().clone()));
    }
    changes.thresholds.push(("root".into(), 2));
    let v2 = changes.apply(&root).unwrap();
    let proposal = Proposal::root(RepositoryKind::ImageRepo, &v2, Some(&v1)).unwrap();
    Ceremony {
        old,
        new,
        v1,
        proposal,
    }
}

/// Each holder's signature goes through its file form, as it would on a USB stick.
fn holder_sig(proposal: &Proposal, key: &PrivateKey) -> DetachedSignature {
    let file = proposal.sign(key).unwrap().to_bytes().unwrap();
    let back = Proposal::from_bytes(&proposal.to_bytes().unwrap()).unwrap();
    assert_eq!(&back, proposal);
    DetachedSignature::from_bytes(&file).unwrap()
}

#[test]
fn two_of_the_old_and_two_of_the_new_root_keys_make_a_root_a_client_accepts() {
    let c = rotation();
    let sigs: Vec<_> = [&c.old[0], &c.old[2], &c.new[1], &c.new[2]]
        .iter()
        .map(|k| holder_sig(&c.proposal, k))
        .collect();
    let status = c.proposal.status(&sigs).unwrap();
    assert!(status.complete(), "{status:?}");
    let v2 = c.proposal.merge(&sigs).unwrap();
    let mut trusted = TrustedSet::new(&c.v1, now()).unwrap();
    assert_eq!(trusted.update_root(&v2).unwrap().version, 2);
}

#[test]
fn a_merge_short_of_a_threshold_names_the_missing_signers() {
    let c = rotation();
    let sigs = vec![
        holder_sig(&c.proposal, &c.old[0]),
        holder_sig(&c.proposal, &c.old[1]),
        holder_sig(&c.proposal, &c.new[0]),
    ];
    let status = c.proposal.status(&sigs).unwrap();
    assert!(!status.complete());
    assert!(status.requirements[0].met());
    assert_eq!(
        status.requirements[1].signed,
        vec![c.new[0].key_id().clone()]
    );
    let err = c.proposal.merge(&sigs).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ProposalShort { .. }), "{text}");
    assert!(text.contains("root v2 (new): 1 of 2"), "{text}");
    for missing in [&c.new[1], &c.new[2]] {
        assert!(text.contains(missing.key_id().as_str()), "{text}");
    }
    assert!(!text.contains(c.new[0].key_id().as_str()), "{text}");
    // The same key twice is one signature.
    let twice = vec![sigs[2].clone(), holder_sig(&c.proposal, &c.new[0])];
    let status = c.proposal.status(&twice).unwrap();
    assert_eq!(status.requirements[1].signed.len(), 1);
}

#[test]
fn a_proposal_edited_after_signing_is_refused_at_merge() {
    let c = rotation();
    let sigs: Vec<_> = [&c.old[0], &c.old[1], &c.new[0], &c.new[1]]
        .iter()
        .map(|k| holder_sig(&c.proposal, k))
        .collect();
    // Someone lowers the new root's threshold in the proposal file after the holders signed.
    let mut edited = c.proposal.clone();
    edited.canonical = edited
        .canonical
        .replace("\"threshold\":2", "\"threshold\":1");
    assert_ne!(edited.canonical, c.proposal.canonical);
    let edited = Proposal::from_bytes(&edited.to_bytes().unwrap()).unwrap();
    let err = edited.merge(&sigs).unwrap_err();
    assert!(matches!(err, Error::ProposalChanged { .. }), "{err}");
    assert!(
        err.to_string().contains("changed after it was signed"),
        "{err}"
    );
    // Even with the digest field forged, the signatures do not cover the edited bytes.
    let forged: Vec<_> = sigs
        .iter()
        .map(|s| DetachedSignature {
            proposal_sha256: edited.digest().unwrap(),
            ..s.clone()
        })
        .collect();
    let status = edited.status(&forged).unwrap();
    assert!(status
        .signatures
        .iter()
        .all(|v| matches!(v, SignatureVerdict::Invalid { .. })));
    assert!(edited.merge(&forged).is_err());
}

/// ECDSA and RSA public keys are PEM inside the metadata: their canonical form carries raw
/// newlines, which the proposal must hold, parse and merge byte for byte.
#[test]
fn keys_whose_canonical_form_holds_newlines_sign_and_merge() {
    let old = key();
    let new = PrivateKey::generate(ferry_keys::KeyKind::EcdsaP256).unwrap();
    let online = key();
    let root = root_v1(&[&old], 1, &online);
    let v1 = sign(&root, &[&old]);
    let changes = RootChanges {
        add: vec![("root".into(), new.public_key().clone())],
        remove: vec![("root".into(), old.key_id().clone())],
        expires: Some(expires_in(365)),
        ..Default::default()
    };
    let proposal = Proposal::root(
        RepositoryKind::Director,
        &changes.apply(&root).unwrap(),
        Some(&v1),
    )
    .unwrap();
    assert!(proposal.canonical.contains('\n'), "PEM newlines stay raw");
    let sigs = vec![holder_sig(&proposal, &old), holder_sig(&proposal, &new)];
    let v2 = proposal.merge(&sigs).unwrap();
    let mut trusted = TrustedSet::new(&v1, now()).unwrap();
    assert_eq!(trusted.update_root(&v2).unwrap().version, 2);
}

#[test]
fn a_key_the_proposal_does_not_ask_for_cannot_sign_it() {
    let c = rotation();
    let stranger = key();
    let err = c.proposal.sign(&stranger).unwrap_err();
    assert!(matches!(err, Error::KeyNotRequested { .. }), "{err}");
    assert!(
        err.to_string().contains(c.old[0].key_id().as_str()),
        "{err}"
    );
}

#[test]
fn a_targets_proposal_is_signed_by_the_root_s_targets_keys() {
    let root_key = key();
    let targets_keys = [key(), key(), key()];
    let online = key();
    let mut root = root_v1(&[&root_key], 1, &online);
    root.roles.insert(
        "targets".into(),
        role_keys(&[&targets_keys[0], &targets_keys[1], &targets_keys[2]], 2),
    );
    root.keys.extend(key_map(&[
        &targets_keys[0],
        &targets_keys[1],
        &targets_keys[2],
    ]));
    let root_bytes = sign(&root, &[&root_key]);
    let mut targets = Targets {
        type_: "targets".into(),
        delegations: None,
        expires: expires_in(90),
        spec_version: SPEC_VERSION.into(),
        targets: BTreeMap::new(),
        version: 1,
        extra: BTreeMap::new(),
    };
    let v1 = sign(&targets, &[&targets_keys[0], &targets_keys[1]]);
    targets.version = 2;
    targets
        .targets
        .insert("ivi/app-1.0.bin".into(), target_file(b"app"));
    let proposal =
        Proposal::targets(RepositoryKind::ImageRepo, &targets, Some(&v1), &root_bytes).unwrap();
    let summary = proposal.summary().unwrap();
    assert_eq!(summary.targets_added.len(), 1);
    assert_eq!(summary.version, (Some(1), 2));
    assert!(
        summary.to_string().contains("+ target ivi/app-1.0.bin"),
        "{summary}"
    );
    // The root key is not a targets key.
    assert!(proposal.sign(&root_key).is_err());
    let one = vec![holder_sig(&proposal, &targets_keys[2])];
    let err = proposal.merge(&one).unwrap_err();
    assert!(err.to_string().contains("1 of 2"), "{err}");
    let two = vec![one[0].clone(), holder_sig(&proposal, &targets_keys[0])];
    let bytes = proposal.merge(&two).unwrap();
    let parsed = ferry_core::metadata::Parsed::<Targets>::from_bytes(&bytes).unwrap();
    let authority = root
        .authority(ferry_core::metadata::RoleType::Targets)
        .unwrap();
    let verified = ferry_core::verify::verify(parsed, &[authority]).unwrap();
    assert_eq!(verified.version, 2);
}

#[test]
fn a_proposal_that_skips_a_version_or_is_not_canonical_is_refused() {
    let c = rotation();
    let mut p = c.proposal.clone();
    p.canonical = p.canonical.replace("\"version\":2", "\"version\":3");
    let err = Proposal::from_bytes(&p.to_bytes().unwrap()).unwrap_err();
    assert!(err.to_string().contains("expected 2"), "{err}");
    let mut p = c.proposal.clone();
    p.canonical = format!(" {}", p.canonical);
    let err = Proposal::from_bytes(&p.to_bytes().unwrap()).unwrap_err();
    assert!(err.to_string().contains("canonical"), "{err}");
    let err = Proposal::from_bytes(b"{\"ferry_proposal\":1,\"ferry_proposal\":1}").unwrap_err();
    assert!(err.to_string().contains("proposal check failed"), "{err}");
}

#[test]
fn root_changes_refuse_what_would_break_the_root() {
    let k = key();
    let online = key();
    let root = root_v1(&[&k], 1, &online);
    let remove_last = RootChanges {
        remove: vec![("root".into(), k.key_id().clone())],
        ..Default::default()
    };
    let err = remove_last.apply(&root).unwrap_err();
    assert!(
        err.to_string().contains("threshold 1 with 0 key(s)"),
        "{err}"
    );
    let unknown_role = RootChanges {
        thresholds: vec![("bins".into(), 1)],
        ..Default::default()
    };
    assert!(unknown_role
        .apply(&root)
        .unwrap_err()
        .to_string()
        .contains("no role \"bins\""));
    let not_listed = RootChanges {
        remove: vec![("timestamp".into(), k.key_id().clone())],
        ..Default::default()
    };
    assert!(not_listed
        .apply(&root)
        .unwrap_err()
        .to_string()
        .contains("does not list"));
    // Rotating the timestamp key drops the old key from the table only if no role uses it.
    let new_ts = key();
    let rotate = RootChanges {
        add: vec![("timestamp".into(), new_ts.public_key().clone())],
        remove: vec![("timestamp".into(), online.key_id().clone())],
        ..Default::default()
    };
    let v2 = rotate.apply(&root).unwrap();
    assert_eq!(v2.version, 2);
    assert!(v2.keys.contains_key(online.key_id()), "still a targets key");
    assert!(v2.keys.contains_key(new_ts.key_id()));
}
