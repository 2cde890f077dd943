//! The payload part `data/0000.tar[...]`: its files, each hashed as it streams to a
//! [`PayloadSink`] and checked against `data/0000/<file>` of the manifest.

use super::manifest::Manifest;
use super::{compress, refuse, Compression, Limits};
use crate::error::Result;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

/// Where payload files go as the artifact streams past.
pub trait PayloadSink {
    /// The payload file `name` (one plain file name) of `size` bytes. What the sink leaves
    /// unread of `content` is read (and hashed) after it returns. A file that then fails its
    /// manifest check fails the whole read: the sink's caller discards what it wrote.
    fn file(&mut self, name: &str, size: u64, content: &mut dyn Read) -> Result<()>;
}

/// A sink that reads nothing: the files are hashed and dropped.
#[derive(Debug, Default)]
pub struct DiscardPayload;

impl PayloadSink for DiscardPayload {
    fn file(&mut self, _name: &str, _size: u64, _content: &mut dyn Read) -> Result<()> {
        Ok(())
    }
}

/// Decompressed bytes allowed after the payload tar's end marker (tar pads to 10 KiB records).
const MAX_TRAILER: u64 = 1 << 20;

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A payload file's name: one plain path component.
fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0']);
    if bad {
        return Err(refuse(
            "payload file name",
            format!("{name:?}; expected one plain file name"),
        ));
    }
    Ok(())
}

/// The payload part: decompress, then every file to the sink, checked against the manifest.
pub(super) fn read(
    entry: &mut impl Read,
    compression: Compression,
    manifest: &Manifest,
    limits: &Limits,
    sink: &mut dyn PayloadSink,
) -> Result<Vec<(String, u64)>> {
    files(
        compress::decoder(compression, entry)?,
        Names::Strict,
        limits,
        sink,
        &mut |name, hash| manifest.check(&format!("data/0000/{name}"), Some(hash)),
    )
}

/// How file names in a tar are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Names {
    /// As mender-artifact writes them: plain names, nothing else.
    Strict,
    /// As `tar -C dir .` writes them too: a leading `./` is dropped, the `./` directory skipped.
    Plain,
}

/// The files of the tar `input`, each to `sink` and its sha256 to `checked`.
pub(super) fn files(
    input: impl Read,
    names: Names,
    limits: &Limits,
    sink: &mut dyn PayloadSink,
    checked: &mut dyn FnMut(&str, &[u8; 32]) -> Result<()>,
) -> Result<Vec<(String, u64)>> {
    let mut archive = tar::Archive::new(input);
    let mut files: Vec<(String, u64)> = Vec::new();
    let mut total: u64 = 0;
    {
        let entries = archive
            .entries()
            .map_err(|e| refuse("payload tar", e.to_string()))?;
        for file in entries {
            let mut file = file.map_err(|e| refuse("payload tar", e.to_string()))?;
            let raw = String::from_utf8(file.path_bytes().into_owned())
                .map_err(|_| refuse("payload tar", "a file name is not UTF-8"))?;
            let kind = file.header().entry_type();
            let name = match names {
                Names::Plain if kind.is_dir() && matches!(raw.as_str(), "." | "./") => continue,
                Names::Plain => raw.strip_prefix("./").unwrap_or(&raw).to_owned(),
                Names::Strict => raw,
            };
            if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
                return Err(refuse(
                    "payload tar",
                    format!("{name:?} is not a regular file"),
                ));
            }
            check_name(&name)?;
            let size = file
                .header()
                .size()
                .map_err(|e| refuse("payload tar", format!("{name:?}: {e}")))?;
            if files.len() >= limits.max_files {
                return Err(refuse(
                    "payload size",
                    format!("more than {} payload files", limits.max_files),
                ));
            }
            total = total.saturating_add(size);
            if total > limits.max_payload_bytes {
                return Err(refuse(
                    "payload size",
                    format!(
                        "the payload files add up to more than {} bytes",
                        limits.max_payload_bytes
                    ),
                ));
            }
            if files.iter().any(|(n, _)| *n == name) {
                return Err(refuse("payload tar", format!("{name:?} appears twice")));
            }
            let mut hashing = Hashing {
                inner: &mut file,
                hasher: Sha256::new(),
            };
            sink.file(&name, size, &mut hashing)?;
            io::copy(&mut hashing, &mut io::sink())
                .map_err(|e| refuse("payload tar", format!("reading {name:?}: {e}")))?;
            let hash: [u8; 32] = hashing.hasher.finalize().into();
            checked(&name, &hash)?;
            files.push((name, size));
        }
    }
    let mut rest = archive.into_inner();
    let trailer = io::copy(&mut (&mut rest).take(MAX_TRAILER + 1), &mut io::sink())
        .map_err(|e| refuse("payload tar", format!("after the last file: {e}")))?;
    if trailer > MAX_TRAILER {
        return Err(refuse(
            "payload tar",
            format!("more than {MAX_TRAILER} bytes after the tar's end"),
        ));
    }
    Ok(files)
}
