//! `ferry repo status`: every role's version, expiry, keys and threshold, and which offline
//! role needs a ceremony soon.

use crate::error::Result;
use crate::repo::Repository;
use ferry_core::expiry::{RoleStatus, Signing};
use ferry_core::metadata::Role;

impl Repository {
    /// The status of every top-level role (and the hashed bin that expires first), counted
    /// from the time the repository was opened with.
    pub fn status(&mut self) -> Result<Vec<RoleStatus>> {
        let sign_before = chrono::Duration::from_std(self.config.expiry.sign_before)
            .unwrap_or(chrono::Duration::days(30));
        let root = self
            .published_root
            .clone()
            .unwrap_or_else(|| self.root.clone());
        let dir = self.dir().display().to_string();
        let mut out = Vec::new();
        let signing = |repo: &mut Repository, role: &str| -> Result<Signing> {
            Ok(if repo.can_sign(role)? {
                Signing::Online
            } else {
                Signing::Offline
            })
        };
        let root_signing = signing(self, "root")?;
        out.push(RoleStatus::new(
            "root",
            &root.signed,
            root.signed.version,
            root.signed.expires.0,
            root_signing,
            Some(format!(
                "ferry repo root propose {dir} --out root-proposal.json"
            )),
            self.now,
            sign_before,
        ));
        if let Some(version) = self.published_version("targets") {
            let targets = self.layout.published_targets("targets", version)?;
            let s = signing(self, "targets")?;
            out.push(RoleStatus::new(
                "targets",
                &root.signed,
                version,
                targets.signed.expires().0,
                s,
                Some(format!(
                    "ferry repo targets propose {dir} --out targets-proposal.json"
                )),
                self.now,
                sign_before,
            ));
        }
        for (role, expires, version) in [
            (
                "snapshot",
                self.snapshot.as_ref().map(|s| s.signed.expires.0),
                self.snapshot.as_ref().map(|s| s.signed.version),
            ),
            (
                "timestamp",
                self.timestamp.as_ref().map(|s| s.signed.expires.0),
                self.timestamp.as_ref().map(|s| s.signed.version),
            ),
        ] {
            if let (Some(expires), Some(version)) = (expires, version) {
                out.push(RoleStatus::new(
                    role,
                    &root.signed,
                    version,
                    expires,
                    Signing::Online,
                    None,
                    self.now,
                    sign_before,
                ));
            }
        }
        Ok(out)
    }
}
