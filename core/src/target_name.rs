use crate::{Error, Result};
use std::fmt;

/// A target path that is safe to use as a relative path under a directory: no absolute paths,
/// no `..` or `.` segments, no empty segments, no backslashes or NUL. Repository tools refuse
/// other names when adding targets; clients refuse to fetch or store them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetName(String);

impl TargetName {
    pub fn new(name: impl Into<String>) -> Result<TargetName> {
        let name = name.into();
        let bad = |reason| {
            Err(Error::UnsafeTargetPath {
                path: name.clone(),
                reason,
            })
        };
        if name.is_empty() {
            return bad("is empty");
        }
        if name.starts_with('/') {
            return bad("is absolute");
        }
        if name.contains('\\') || name.contains('\0') {
            return bad("contains a backslash or NUL");
        }
        if name.chars().any(char::is_control) {
            return bad("contains a control character");
        }
        for segment in name.split('/') {
            match segment {
                "" => return bad("has an empty path segment"),
                "." | ".." => return bad("has a '.' or '..' segment"),
                _ => {}
            }
        }
        Ok(TargetName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(directory part with trailing '/', file name)`; the directory part may be empty.
    pub fn split_dir(&self) -> (&str, &str) {
        match self.0.rfind('/') {
            Some(i) => (&self.0[..=i], &self.0[i + 1..]),
            None => ("", &self.0),
        }
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escaping_names() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a\\b",
            "a/",
            "x\0y",
            "a\nb",
        ] {
            assert!(TargetName::new(bad).is_err(), "{bad:?} must be refused");
        }
        let ok = TargetName::new("ecu/ivi/app-1.0.bin").expect("safe name");
        assert_eq!(ok.split_dir(), ("ecu/ivi/", "app-1.0.bin"));
        assert_eq!(
            TargetName::new("f..bin")
                .expect("dots inside a name are fine")
                .split_dir(),
            ("", "f..bin")
        );
    }
}
