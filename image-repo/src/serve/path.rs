//! Turning a request path into a regular file inside one served subdirectory, or nothing.
//!
//! Every refusal here becomes a 404: a client probing for `keys/` or `../` learns no more than
//! it would from a missing file.

use percent_encoding::percent_decode_str;
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

/// Longer names fail in the kernel (ENAMETOOLONG); refusing them here keeps that a 404
/// instead of an I/O error.
const MAX_SEGMENT_BYTES: usize = 255;
const MAX_PATH_BYTES: usize = 2048;

/// Decodes the still percent-encoded path below `/metadata/` or `/targets/` into segments.
///
/// `None` when any segment is empty (so `a//b` and a trailing `/` are refused), `.`, `..`,
/// not UTF-8, or holds `/` (an encoded `%2F`), a backslash or NUL.
pub(super) fn segments(raw: &str) -> Option<Vec<String>> {
    if raw.len() > MAX_PATH_BYTES {
        return None;
    }
    raw.split('/')
        .map(|encoded| {
            let segment = percent_decode_str(encoded).decode_utf8().ok()?;
            let refused = segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.len() > MAX_SEGMENT_BYTES
                || segment.contains(['/', '\\', '\0']);
            (!refused).then(|| segment.into_owned())
        })
        .collect()
}

/// A regular file opened inside the served subdirectory.
#[derive(Debug)]
pub(super) struct Opened {
    pub file: File,
    pub meta: Metadata,
    /// Where it really is, for server-side logs only (never sent to clients).
    pub real: PathBuf,
}

/// Opens `base/segments...` if it is a regular file whose real path (symlinks resolved) stays
/// inside `base`'s real path. `Ok(None)` for anything a client should see as 404.
///
/// Symlinks inside the subtree are followed (an operator may link one target to another);
/// the file opened is the canonical path, so a component swapped for a symlink after the
/// prefix check cannot redirect the open to a path that was not checked.
pub(super) fn open_inside(base: &Path, segments: &[String]) -> io::Result<Option<Opened>> {
    let Some(base) = not_found_as_none(base.canonicalize())? else {
        return Ok(None);
    };
    let requested: PathBuf = segments.iter().fold(base.clone(), |p, s| p.join(s));
    let Some(real) = not_found_as_none(requested.canonicalize())? else {
        return Ok(None);
    };
    if !real.starts_with(&base) || real == base {
        return Ok(None);
    }
    // Checked before opening: opening a FIFO would block, and a device has no business here.
    if !std::fs::metadata(&real)?.is_file() {
        return Ok(None);
    }
    let Some(file) = not_found_as_none(File::open(&real))? else {
        return Ok(None);
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    Ok(Some(Opened { file, meta, real }))
}

fn not_found_as_none<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn plain_and_encoded_names_decode() {
        assert_eq!(
            segments("1.root.json"),
            Some(vec!["1.root.json".to_owned()])
        );
        assert_eq!(
            segments("dir/ab%20cd.bin"),
            Some(vec!["dir".to_owned(), "ab cd.bin".to_owned()])
        );
    }

    #[test]
    fn traversal_and_odd_segments_are_refused() {
        for raw in [
            "",
            "a/",
            "a//b",
            ".",
            "..",
            "../keys/root.pem",
            "%2e%2e/keys/root.pem",
            "%2E%2E%2Fkeys%2Froot.pem",
            "a/%2e/b",
            "a%2Fb",
            "a%5Cb",
            "a\\b",
            "a%00b",
            "%ff",
        ] {
            assert_eq!(segments(raw), None, "{raw:?} should be refused");
        }
        assert_eq!(segments(&"a".repeat(256)), None);
    }
}
