//! Uptane's custom target fields (DESIGN.md "Wire formats"), with aktualizr/ota-tuf and Mender
//! names. Parsed on demand from `TargetFile::custom`; unknown fields are kept.

use super::TargetFile;
use crate::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// The update domain of a target: how it is installed and rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Domain {
    Os,
    App,
    Container,
    /// The OS as an OSTree commit, deployed with `ostree admin deploy` (Torizon's way).
    Ostree,
    /// The OS root as btrfs snapshots (MicroOS's transactional updates).
    Snapshot,
    /// The OS as a RAUC bundle, installed by RAUC into its inactive slot.
    Rauc,
    /// Any other domain, installed by an update module of that name.
    Module(String),
}

impl Domain {
    /// The domain of a target that names none: partial verification sees only Director
    /// targets, which carry no domain, and an app is the least intrusive thing to install.
    pub const DEFAULT: Domain = Domain::App;

    pub fn as_str(&self) -> &str {
        match self {
            Domain::Os => "os",
            Domain::App => "app",
            Domain::Container => "container",
            Domain::Ostree => "ostree",
            Domain::Snapshot => "snapshot",
            Domain::Rauc => "rauc",
            Domain::Module(m) => m,
        }
    }

    /// Whether targets of this domain replace the operating system: their claims live in the
    /// `rootfs-image` namespace whatever mechanism installs them.
    pub fn is_os(&self) -> bool {
        matches!(
            self,
            Domain::Os | Domain::Ostree | Domain::Snapshot | Domain::Rauc
        )
    }

    pub fn parse(s: &str) -> Domain {
        match s {
            "os" => Domain::Os,
            "app" => Domain::App,
            "container" => Domain::Container,
            "ostree" => Domain::Ostree,
            "snapshot" => Domain::Snapshot,
            "rauc" => Domain::Rauc,
            other => Domain::Module(other.to_owned()),
        }
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Domain::parse(&String::deserialize(d)?))
    }
}

/// A depends value: one accepted value, or a list of which any one is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DependsValue {
    One(String),
    AnyOf(Vec<String>),
}

impl DependsValue {
    pub fn accepted(&self) -> &[String] {
        match self {
            DependsValue::One(v) => std::slice::from_ref(v),
            DependsValue::AnyOf(vs) => vs,
        }
    }
}

/// `custom` of an Image repository target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageCustom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clears_provides: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends: BTreeMap<String, DependsValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
    pub hardware_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provides: BTreeMap<String, String>,
    #[serde(default)]
    pub release_counter: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageCustom {
    /// The target's domain, [`Domain::DEFAULT`] when it names none.
    pub fn domain_or_default(&self) -> &Domain {
        self.domain.as_ref().unwrap_or(&Domain::DEFAULT)
    }

    /// The namespace a domain's claims live in: `rootfs-image` for the OS,
    /// `data-partition.<name>` for apps, containers and modules.
    fn namespace(&self) -> Option<String> {
        match (&self.domain, &self.name) {
            (Some(d), _) if d.is_os() => Some("rootfs-image".into()),
            (Some(_), Some(name)) => Some(format!("data-partition.{name}")),
            _ => None,
        }
    }

    /// Provides after the domain defaults: `<namespace>.version` = version, unless given;
    /// for an OSTree target also `rootfs-image.ostree.commit` = its commit.
    pub fn effective_provides(&self) -> BTreeMap<String, String> {
        let mut provides = self.provides.clone();
        if let (Some(ns), Some(version)) = (self.namespace(), &self.version) {
            provides
                .entry(format!("{ns}.version"))
                .or_insert_with(|| version.clone());
        }
        if self.domain == Some(Domain::Ostree) {
            if let Some(commit) = ostree_commit_field(&self.extra) {
                provides
                    .entry(OSTREE_COMMIT_PROVIDE.into())
                    .or_insert_with(|| commit.to_owned());
            }
        }
        provides
    }

    /// The `ostree` object of an OSTree target: which commit it delivers and how.
    pub fn ostree(&self, target: &str) -> Result<Option<OstreeCustom>> {
        match self.extra.get(OSTREE_FIELD) {
            None => Ok(None),
            Some(v) => {
                let custom: OstreeCustom = serde_json::from_value(v.clone()).map_err(|e| {
                    Error::malformed(format!("custom.{OSTREE_FIELD} of target {target}"), e)
                })?;
                if !is_ostree_checksum(&custom.commit) {
                    return Err(Error::malformed(
                        format!("custom.{OSTREE_FIELD}.commit of target {target}"),
                        format!(
                            "{:?} is not an OSTree commit checksum (64 lowercase hex digits)",
                            custom.commit
                        ),
                    ));
                }
                custom.check_delivery(target)?;
                Ok(Some(custom))
            }
        }
    }

    /// Clears after the domain defaults: `<namespace>.*` unless `clearsProvides` is given.
    pub fn effective_clears(&self) -> Vec<String> {
        match (&self.clears_provides, self.namespace()) {
            (Some(clears), _) => clears.clone(),
            (None, Some(ns)) => vec![format!("{ns}.*")],
            (None, None) => Vec::new(),
        }
    }
}

/// The custom field holding an OSTree target's [`OstreeCustom`].
pub const OSTREE_FIELD: &str = "ostree";
/// The provide an OSTree target sets to its commit.
pub const OSTREE_COMMIT_PROVIDE: &str = "rootfs-image.ostree.commit";

/// `custom.ostree` of an OSTree target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OstreeCustom {
    /// The commit the target delivers (64 lowercase hex digits).
    pub commit: String,
    /// How the commit reaches the ECU.
    pub delivery: OstreeDelivery,
    /// The commit the delta was generated from; `None` for a delta from nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Where a pull target's commit is pulled from: an OSTree repository's http(s) URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl OstreeCustom {
    /// Each delivery has the fields it needs and none of the other's: a `url` on a delta, or a
    /// `from` on a pull, would be a field nobody checks.
    fn check_delivery(&self, target: &str) -> Result<()> {
        let field = |name: &str| format!("custom.{OSTREE_FIELD}.{name} of target {target}");
        match self.delivery {
            OstreeDelivery::StaticDelta => {
                if self.url.is_some() {
                    return Err(Error::malformed(
                        field("url"),
                        "a url is only for delivery \"pull\"; a static delta is the target file",
                    ));
                }
            }
            OstreeDelivery::Pull => {
                let url = self.url.as_deref().unwrap_or_default();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(Error::malformed(
                        field("url"),
                        format!("{url:?}: expected the http:// or https:// URL of the OSTree repository the commit is pulled from"),
                    ));
                }
                if self.from.is_some() {
                    return Err(Error::malformed(
                        field("from"),
                        "a pull fetches whatever objects the ECU lacks; expected no from",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OstreeDelivery {
    /// The target file is a static delta (`ostree static-delta generate --inline`), applied
    /// with `static-delta apply-offline`.
    StaticDelta,
    /// There is no target file: the ECU pulls the commit from `url` by its checksum, which
    /// is the target's signed sha256 (aktualizr's convention; the commit checksum is a Merkle
    /// root over the whole tree). See [`super::received`].
    Pull,
}

/// Whether `s` is an OSTree checksum: 64 lowercase hex digits.
pub fn is_ostree_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `extra["ostree"]["commit"]` as a string, if there is one.
fn ostree_commit_field(extra: &BTreeMap<String, serde_json::Value>) -> Option<&str> {
    extra.get(OSTREE_FIELD)?.get("commit")?.as_str()
}

/// `custom` of a Director target: which ECUs of the vehicle install it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectorCustom {
    pub ecu_identifiers: BTreeMap<String, EcuIdentifier>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcuIdentifier {
    pub hardware_id: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl TargetFile {
    /// This target's custom fields as an Image repository target.
    pub fn image_custom(&self, target: &str) -> Result<ImageCustom> {
        let custom = self.custom.clone().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(custom)
            .map_err(|e| Error::malformed(format!("custom of target {target}"), e))
    }

    /// This target's custom fields as a Director target.
    pub fn director_custom(&self, target: &str) -> Result<DirectorCustom> {
        let custom = self.custom.clone().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(custom)
            .map_err(|e| Error::malformed(format!("custom of director target {target}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn design_example_round_trips_with_defaults() {
        let v = json!({ "hardwareIds": ["ivi-a53"], "releaseCounter": 7,
            "domain": "app", "name": "analytics-engine", "version": "3.0",
            "provides": {"data-partition.analytics-engine.version": "3.0"},
            "depends":  {"rootfs-image.python.version": ["3.12", "3.13"], "rootfs-image.feature.docker": "true"},
            "clearsProvides": ["data-partition.analytics-engine.*"], "x-vendor": 1 });
        let c: ImageCustom = serde_json::from_value(v.clone()).expect("parses");
        assert_eq!(c.domain, Some(Domain::App));
        assert_eq!(
            c.depends["rootfs-image.python.version"].accepted(),
            ["3.12", "3.13"]
        );
        assert_eq!(serde_json::to_value(&c).expect("serialises"), v);
    }

    #[test]
    fn an_ostree_target_lives_in_the_rootfs_namespace_and_provides_its_commit() {
        let commit = "ab".repeat(32);
        let c: ImageCustom = serde_json::from_value(json!({"hardwareIds": ["x"],
            "domain": "ostree", "name": "torizon", "version": "6.1",
            "ostree": {"commit": commit, "delivery": "static-delta"}}))
        .expect("parses");
        assert_eq!(c.domain, Some(Domain::Ostree));
        assert_eq!(c.effective_clears(), vec!["rootfs-image.*".to_string()]);
        let provides = c.effective_provides();
        assert_eq!(provides["rootfs-image.version"], "6.1");
        assert_eq!(provides[OSTREE_COMMIT_PROVIDE], commit);
        let o = c.ostree("os/t").expect("valid").expect("present");
        assert_eq!(o.delivery, OstreeDelivery::StaticDelta);
        assert_eq!(o.from, None);
        // A commit that is not a checksum is refused by name.
        let bad: ImageCustom = serde_json::from_value(json!({"hardwareIds": ["x"],
            "domain": "ostree", "ostree": {"commit": "main", "delivery": "static-delta"}}))
        .expect("parses");
        let e = bad.ostree("os/t").expect_err("refused").to_string();
        assert!(e.contains("custom.ostree.commit of target os/t"), "{e}");
        assert!(e.contains("64 lowercase hex digits"), "{e}");
        // A pull names its URL; a delta names none.
        let pull: ImageCustom = serde_json::from_value(json!({"hardwareIds": ["x"],
            "domain": "ostree", "ostree": {"commit": commit, "delivery": "pull",
            "url": "https://ostree.example.com/repo"}}))
        .expect("parses");
        let o = pull.ostree("os/t").expect("valid").expect("present");
        assert_eq!(o.delivery, OstreeDelivery::Pull);
        assert_eq!(o.url.as_deref(), Some("https://ostree.example.com/repo"));
        let delta_with_url: ImageCustom = serde_json::from_value(json!({"hardwareIds": ["x"],
            "domain": "ostree", "ostree": {"commit": commit, "delivery": "static-delta",
            "url": "https://ostree.example.com/repo"}}))
        .expect("parses");
        let e = delta_with_url
            .ostree("os/t")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("custom.ostree.url of target os/t"), "{e}");
    }

    #[test]
    fn os_defaults_clear_rootfs_and_provide_version() {
        let c: ImageCustom = serde_json::from_value(
            json!({"hardwareIds": ["x"], "domain": "os", "name": "poky", "version": "4.0"}),
        )
        .expect("parses");
        assert_eq!(c.effective_clears(), vec!["rootfs-image.*".to_string()]);
        assert_eq!(c.effective_provides()["rootfs-image.version"], "4.0");
        let app: ImageCustom = serde_json::from_value(
            json!({"hardwareIds": ["x"], "domain": "container", "name": "web", "version": "2"}),
        )
        .expect("parses");
        assert_eq!(
            app.effective_clears(),
            vec!["data-partition.web.*".to_string()]
        );
        assert_eq!(app.effective_provides()["data-partition.web.version"], "2");
    }
}
