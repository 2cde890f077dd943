use crate::{Error, Result};
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;

/// Hash algorithm name → lowercase hex digest.
pub type Hashes = BTreeMap<String, String>;

/// Incremental length and hash check for a download: feed bytes as they arrive, then `finish`.
/// Every listed hash is checked; an algorithm we cannot compute is refused up front (a hash we
/// skip is a hash an attacker chooses).
#[derive(Debug)]
pub struct HashCheck {
    what: String,
    expected_len: Option<u64>,
    seen: u64,
    sha256: Option<(Sha256, String)>,
    sha512: Option<(Sha512, String)>,
}

impl HashCheck {
    pub fn new(
        what: impl Into<String>,
        length: Option<u64>,
        hashes: Option<&Hashes>,
    ) -> Result<Self> {
        let what = what.into();
        let mut check = HashCheck {
            what,
            expected_len: length,
            seen: 0,
            sha256: None,
            sha512: None,
        };
        for (alg, digest) in hashes.into_iter().flatten() {
            let digest = digest.to_ascii_lowercase();
            match alg.as_str() {
                "sha256" => check.sha256 = Some((Sha256::new(), digest)),
                "sha512" => check.sha512 = Some((Sha512::new(), digest)),
                _ => {
                    return Err(Error::UnsupportedHash {
                        what: check.what,
                        algorithm: alg.clone(),
                    })
                }
            }
        }
        Ok(check)
    }

    /// Require at least one hash (targets must be pinned by content).
    pub fn require_hashes(self) -> Result<Self> {
        if self.sha256.is_none() && self.sha512.is_none() {
            return Err(Error::NoHashes { what: self.what });
        }
        Ok(self)
    }

    /// Feed the next bytes. Fails as soon as more bytes arrive than the signed length allows.
    pub fn update(&mut self, bytes: &[u8]) -> Result<()> {
        self.seen += bytes.len() as u64;
        if let Some(limit) = self.expected_len {
            if self.seen > limit {
                return Err(Error::TooLong {
                    what: self.what.clone(),
                    limit,
                });
            }
        }
        if let Some((h, _)) = &mut self.sha256 {
            h.update(bytes);
        }
        if let Some((h, _)) = &mut self.sha512 {
            h.update(bytes);
        }
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        if let Some(expected) = self.expected_len {
            if self.seen != expected {
                return Err(Error::Length {
                    what: self.what,
                    expected,
                    found: self.seen,
                });
            }
        }
        if let Some((h, expected)) = self.sha256 {
            compare(&self.what, "sha256", &expected, &h.finalize())?;
        }
        if let Some((h, expected)) = self.sha512 {
            compare(&self.what, "sha512", &expected, &h.finalize())?;
        }
        Ok(())
    }
}

fn compare(what: &str, alg: &str, expected: &str, got: &[u8]) -> Result<()> {
    let found = hex::encode(got);
    if found != expected {
        return Err(Error::Hash {
            what: what.to_owned(),
            algorithm: alg.to_owned(),
            expected: expected.to_owned(),
            found,
        });
    }
    Ok(())
}

/// Check a whole buffer against an optional length and optional hashes.
pub fn verify_length_and_hashes(
    what: &str,
    data: &[u8],
    length: Option<u64>,
    hashes: Option<&Hashes>,
) -> Result<()> {
    let mut check = HashCheck::new(what, length, hashes)?;
    check.update(data)?;
    check.finish()
}

/// sha256 and sha512 of `data`, as a [`Hashes`] map.
pub fn hashes_of(data: &[u8]) -> Hashes {
    let mut h = Hashes::new();
    h.insert("sha256".into(), hex::encode(Sha256::digest(data)));
    h.insert("sha512".into(), hex::encode(Sha512::digest(data)));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hash_and_the_length_are_checked() {
        let data = b"hello";
        let good = hashes_of(data);
        verify_length_and_hashes("t", data, Some(5), Some(&good)).expect("good data passes");
        assert!(matches!(
            verify_length_and_hashes("t", data, Some(4), Some(&good)),
            Err(Error::TooLong { .. })
        ));
        assert!(matches!(
            verify_length_and_hashes("t", data, Some(6), Some(&good)),
            Err(Error::Length { .. })
        ));
        let mut bad512 = good.clone();
        bad512.insert("sha512".into(), "00".repeat(64));
        assert!(matches!(
            verify_length_and_hashes("t", data, Some(5), Some(&bad512)),
            Err(Error::Hash { algorithm, .. }) if algorithm == "sha512"
        ));
        let mut unknown = good.clone();
        unknown.insert("md5".into(), "00".into());
        assert!(matches!(
            verify_length_and_hashes("t", data, Some(5), Some(&unknown)),
            Err(Error::UnsupportedHash { .. })
        ));
    }

    #[test]
    fn targets_must_list_a_hash() {
        let empty = Hashes::new();
        assert!(matches!(
            HashCheck::new("t", Some(1), Some(&empty)).and_then(|c| c.require_hashes()),
            Err(Error::NoHashes { .. })
        ));
    }
}
