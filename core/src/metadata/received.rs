//! What a received image is checked against: its signed length and every signed hash, with
//! one narrow exception, an OSTree pull target (`custom.ostree.delivery = "pull"`). Such a
//! target has no file: its signed sha256 is the commit checksum (aktualizr's convention: the
//! checksum is a Merkle root over the commit's whole tree, so pulling by it is safe) and its
//! length is 0. Its image stream must be empty, and the ECU's installer checks the commit
//! after the pull. The exception is taken only for a target whose every field agrees: the
//! domain `ostree`, length 0, exactly one hash, sha256, equal to `custom.ostree.commit`;
//! anything else that claims a pull is refused by name, never checked as a file.

use super::uptane::{Domain, OstreeDelivery, OSTREE_FIELD};
use super::{HashCheck, Hashes, TargetFile};
use crate::{Error, Result};

/// The commit of `target` when it is an OSTree pull target, after checking that it is one
/// in every field; `None` for every other target (checked as a file).
pub fn ostree_pull_commit(name: &str, target: &TargetFile) -> Result<Option<String>> {
    let claims_pull = target
        .custom
        .as_ref()
        .and_then(|c| c.get(OSTREE_FIELD))
        .and_then(|o| o.get("delivery"))
        .and_then(|d| d.as_str())
        == Some("pull");
    if !claims_pull {
        return Ok(None);
    }
    let refuse = |found: String, expected: &str| Error::OstreePull {
        target: name.to_owned(),
        found,
        expected: expected.to_owned(),
    };
    let custom = target.image_custom(name)?;
    if custom.domain != Some(Domain::Ostree) {
        return Err(refuse(
            format!("domain {:?}", custom.domain_or_default().as_str()),
            "domain \"ostree\"",
        ));
    }
    let ostree = custom
        .ostree(name)?
        .ok_or_else(|| refuse("no custom.ostree".into(), "custom.ostree"))?;
    if ostree.delivery != OstreeDelivery::Pull {
        return Err(refuse(
            format!("delivery {:?}", ostree.delivery),
            "delivery \"pull\"",
        ));
    }
    if target.length != 0 {
        return Err(refuse(
            format!("length {}", target.length),
            "length 0: a pull target has no file",
        ));
    }
    let algorithms: Vec<&str> = target.hashes.keys().map(String::as_str).collect();
    if algorithms != ["sha256"] {
        return Err(refuse(
            format!("hashes {algorithms:?}"),
            "exactly one hash, sha256, the commit checksum",
        ));
    }
    let sha256 = target.hashes["sha256"].to_ascii_lowercase();
    if sha256 != ostree.commit {
        return Err(refuse(
            format!("sha256 {sha256}"),
            &format!("the custom.ostree.commit {}", ostree.commit),
        ));
    }
    Ok(Some(ostree.commit))
}

/// The checks a received image of `target` (named `name`) must pass, each bounding the
/// stream by the signed length: one per signed hash (an unknown algorithm, or none, is
/// refused up front: a hash we skip is a hash an attacker chooses); for an OSTree pull
/// target, one check that the stream is empty.
pub fn image_checks(name: &str, target: &TargetFile) -> Result<Vec<HashCheck>> {
    if ostree_pull_commit(name, target)?.is_some() {
        return Ok(vec![HashCheck::new(name, Some(0), None)?]);
    }
    HashCheck::new(name, Some(target.length), Some(&target.hashes))?.require_hashes()?;
    target
        .hashes
        .iter()
        .map(|(algorithm, digest)| {
            let one: Hashes = [(algorithm.clone(), digest.clone())].into();
            HashCheck::new(name, Some(target.length), Some(&one))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pull(commit: &str, length: u64, hashes: Hashes) -> TargetFile {
        TargetFile {
            custom: Some(json!({"hardwareIds": ["x"], "domain": "ostree",
                "ostree": {"commit": commit, "delivery": "pull", "url": "http://127.0.0.1:1/repo"}})),
            hashes,
            length,
            extra: Default::default(),
        }
    }

    fn sha256(h: &str) -> Hashes {
        [("sha256".to_string(), h.to_string())].into()
    }

    fn run(checks: Vec<HashCheck>, bytes: &[u8]) -> Result<()> {
        for mut c in checks {
            c.update(bytes)?;
            c.finish()?;
        }
        Ok(())
    }

    #[test]
    fn a_pull_target_takes_an_empty_stream_only() {
        let commit = "ab".repeat(32);
        let t = pull(&commit, 0, sha256(&commit));
        assert_eq!(ostree_pull_commit("os/t", &t).unwrap(), Some(commit));
        run(image_checks("os/t", &t).unwrap(), b"").expect("empty stream passes");
        let e = run(image_checks("os/t", &t).unwrap(), b"x").unwrap_err();
        assert!(matches!(e, Error::TooLong { limit: 0, .. }), "{e}");
    }

    #[test]
    fn a_pull_target_whose_fields_disagree_is_refused_by_name() {
        let commit = "ab".repeat(32);
        let other = "cd".repeat(32);
        let mut two = sha256(&commit);
        two.insert("sha512".into(), "00".repeat(64));
        let cases = [
            (pull(&commit, 0, sha256(&other)), "sha256 cdcd"),
            (
                pull(&commit, 5, sha256(&commit)),
                "length 0: a pull target has no file",
            ),
            (pull(&commit, 0, two), "exactly one hash, sha256"),
        ];
        for (t, needle) in cases {
            let e = image_checks("os/t", &t).unwrap_err().to_string();
            assert!(
                e.contains("ostree pull target check failed: target os/t"),
                "{e}"
            );
            assert!(e.contains(needle), "{e}");
        }
        // Another domain claiming a pull.
        let mut t = pull(&commit, 0, sha256(&commit));
        t.custom.as_mut().unwrap()["domain"] = json!("os");
        let e = image_checks("os/t", &t).unwrap_err().to_string();
        assert!(e.contains("expected domain \"ostree\""), "{e}");
        // A pull without a url, or with one that is no http(s) URL.
        for url in [json!(null), json!("file:///srv/repo")] {
            let mut t = pull(&commit, 0, sha256(&commit));
            t.custom.as_mut().unwrap()["ostree"]["url"] = url;
            let e = image_checks("os/t", &t).unwrap_err().to_string();
            assert!(e.contains("custom.ostree.url of target os/t"), "{e}");
        }
    }

    #[test]
    fn other_targets_are_checked_as_files() {
        let data = b"image";
        let t = TargetFile {
            custom: None,
            hashes: super::super::hashes_of(data),
            length: data.len() as u64,
            extra: Default::default(),
        };
        assert_eq!(image_checks("t", &t).unwrap().len(), 2);
        run(image_checks("t", &t).unwrap(), data).expect("the signed bytes pass");
        assert!(run(image_checks("t", &t).unwrap(), b"").is_err());
        let unsigned = TargetFile {
            hashes: Hashes::new(),
            ..t
        };
        assert!(matches!(
            image_checks("t", &unsigned),
            Err(Error::NoHashes { .. })
        ));
    }
}
