//! Repository layout rules (TUF specification §5, as python-tuf names files): what a role's
//! metadata file and a target's stored file are called. The Image repository writes by these
//! rules and every client reads by them, so they live here once.

use crate::TargetName;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The four top-level roles a root must name, no more, no fewer.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "snapshot", "targets", "timestamp"];

/// Everything but `A-Za-z0-9-._~` is encoded (python's `urllib.parse.quote(s, safe="")`, as
/// python-tuf names delegated roles' files), so a role or target name never names a path
/// outside its directory.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `name` percent-encoded as one path segment.
pub fn quote(name: &str) -> String {
    utf8_percent_encode(name, QUOTE).to_string()
}

/// A URL path percent-encoded segment by segment, keeping its `/` separators.
pub fn quote_path(path: &str) -> String {
    path.split('/').map(quote).collect::<Vec<_>>().join("/")
}

/// The file name of `role`'s metadata under `metadata/`: `N.ROLE.json` when versioned (every
/// root, and every role but timestamp under consistent snapshots), else `ROLE.json`.
pub fn metadata_file_name(role: &str, version: Option<u64>) -> String {
    match version {
        Some(version) => format!("{version}.{}.json", quote(role)),
        None => format!("{}.json", quote(role)),
    }
}

/// Where a target is stored under consistent snapshots: `dir/HASH.name` (the spec's path,
/// which python-tuf uses; not tough's `HASH.dir/name`), one copy per listed hash.
pub fn consistent_target_path(name: &TargetName, hash: &str) -> String {
    let (dir, file) = name.split_dir();
    format!("{dir}{hash}.{file}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_and_never_leave_their_directory() {
        assert_eq!(metadata_file_name("root", Some(2)), "2.root.json");
        assert_eq!(metadata_file_name("timestamp", None), "timestamp.json");
        assert_eq!(metadata_file_name("../x y", None), "..%2Fx%20y.json");
        assert_eq!(quote_path("a b/c"), "a%20b/c");
        let name = TargetName::new("ecu/ivi/app.bin").unwrap();
        assert_eq!(consistent_target_path(&name, "ab"), "ecu/ivi/ab.app.bin");
        let top = TargetName::new("app.bin").unwrap();
        assert_eq!(consistent_target_path(&top, "ab"), "ab.app.bin");
    }
}
