//! Where a signing key comes from. Every place Ferry signs (Image repository roles, Director
//! roles, ECU version reports, the vehicle manifest) asks a [`KeySource`] for its signer, so a
//! new kind of key (PKCS#11, a KMS) is one new source, not a change at every signing site.

use crate::{PrivateKey, Result, Signer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// A source of one signing key.
pub trait KeySource: Send + Sync + std::fmt::Debug {
    /// The signer; the private part stays inside it.
    fn signer(&self) -> Result<Arc<dyn Signer>>;
}

/// A PKCS#8 PEM file, optionally passphrase-encrypted.
#[derive(Clone)]
pub struct FileKeySource {
    path: PathBuf,
    passphrase: Option<Zeroizing<Vec<u8>>>,
    owner_only: bool,
}

impl std::fmt::Debug for FileKeySource {
    // Never the passphrase.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeySource")
            .field("path", &self.path)
            .field("encrypted", &self.passphrase.is_some())
            .field("owner_only", &self.owner_only)
            .finish()
    }
}

impl FileKeySource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileKeySource {
            path: path.into(),
            passphrase: None,
            owner_only: false,
        }
    }

    /// Decrypt the file with `passphrase`.
    pub fn with_passphrase(mut self, passphrase: Option<&[u8]>) -> Self {
        self.passphrase = passphrase.map(|p| Zeroizing::new(p.to_vec()));
        self
    }

    /// Refuse the file unless only its owner can read it (keys that sign on a server or ECU).
    pub fn owner_only(mut self) -> Self {
        self.owner_only = true;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key itself, for callers that must also write or convert it (key ceremonies).
    pub fn private_key(&self) -> Result<PrivateKey> {
        let passphrase = self.passphrase.as_ref().map(|p| p.as_slice());
        if self.owner_only {
            PrivateKey::read_file_owner_only(&self.path, passphrase)
        } else {
            PrivateKey::read_file(&self.path, passphrase)
        }
    }
}

impl KeySource for FileKeySource {
    fn signer(&self) -> Result<Arc<dyn Signer>> {
        Ok(Arc::new(self.private_key()?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::KeyKind;

    #[test]
    fn a_file_source_signs_with_the_file_s_key_and_never_shows_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        key.write_file(&path, Some(b"secret")).unwrap();
        let source = FileKeySource::new(&path)
            .with_passphrase(Some(b"secret"))
            .owner_only();
        let signer = source.signer().unwrap();
        assert_eq!(signer.key_id(), key.key_id());
        let sig = signer.sign(b"msg").unwrap();
        key.public_key().verify(b"msg", &sig).unwrap();
        assert!(!format!("{source:?}").contains("secret"));
        let wrong = FileKeySource::new(&path).with_passphrase(Some(b"nope"));
        assert!(wrong.signer().is_err());
    }
}
