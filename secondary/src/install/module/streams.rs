//! Mender's `stream-next` protocol for the Download state: the tree gets the FIFO
//! `stream-next` and the directory `streams/`. While the module runs Download, each payload
//! file is offered in turn: a read of `stream-next` returns `streams/<file>` (then end of
//! file), and the module reads that file's bytes from the FIFO `streams/<file>`; once every
//! file is offered, a read of `stream-next` returns nothing, which ends the list. A module
//! that finishes Download without opening `stream-next` gets the files in `files/` instead,
//! as Mender does.
//!
//! Nothing here waits on the module without also watching whether its Download call has
//! ended (the call's time limit kills a module that hangs): FIFOs are opened without
//! blocking, retried until the module opens its end or its call has returned.

use super::payload::{self, Kind};
use crate::error::{Error, Result};
use crate::install::InstallJob;
use crate::mender::PayloadSink;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(10);

fn fifo(path: &Path) -> Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .map_err(|e| Error::io(path, e.into()))
}

/// The write end of the FIFO at `path`, once the module has opened its read end; `None` if
/// the module's call returned first.
fn open_when_read(path: &Path, done: &AtomicBool) -> Result<Option<File>> {
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(nonblock)
            .open(path)
        {
            Ok(_probe) => {
                // A reader is there and waits for data: open again, blocking, for writing
                // (immediate, as the reader holds its end), then let the probe go.
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::io(path, e))?;
                return Ok(Some(file));
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
                if done.load(Ordering::Acquire) {
                    return Ok(None);
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    }
}

/// Offers each payload file through `stream-next` and its stream.
struct Streams<'a> {
    tree: PathBuf,
    module: &'a str,
    done: &'a AtomicBool,
    /// The module's read of stream-next, already open, for the next line.
    next: Option<File>,
    /// Whether each line carries the file's size (`DownloadWithFileSizes`).
    sizes: bool,
}

impl Streams<'_> {
    fn gone(&self, what: String) -> Error {
        Error::UpdateModule {
            module: self.module.to_owned(),
            state: "Download",
            detail: format!("the module finished Download without reading {what}; expected it to read every stream it is offered (or none, to get files/)"),
        }
    }

    /// Write `line` to the module's next read of stream-next.
    fn announce(&mut self, line: &str) -> Result<()> {
        let next = self.tree.join("stream-next");
        let mut file = match self.next.take() {
            Some(file) => file,
            None => {
                open_when_read(&next, self.done)?.ok_or_else(|| self.gone("stream-next".into()))?
            }
        };
        file.write_all(line.as_bytes())
            .map_err(|e| Error::io(&next, e))
    }
}

impl PayloadSink for Streams<'_> {
    fn file(&mut self, name: &str, size: u64, content: &mut dyn Read) -> Result<()> {
        let stream = self.tree.join("streams").join(name);
        fifo(&stream)?;
        let line = if self.sizes {
            format!("streams/{name} {size}\n")
        } else {
            format!("streams/{name}\n")
        };
        self.announce(&line)?;
        let mut out = open_when_read(&stream, self.done)?
            .ok_or_else(|| self.gone(format!("streams/{name}")))?;
        std::io::copy(content, &mut out).map_err(|e| Error::io(&stream, e))?;
        Ok(())
    }
}

/// Run Download (`call`, on its own thread) while offering the payload through
/// `stream-next`, each line with the file's size when `sizes`. Returns the call's result and whether the module took the streams (if
/// not, the caller puts the files in `files/`).
pub fn download<T: Send>(
    tree: &Path,
    module: &str,
    job: &InstallJob<'_>,
    kind: Kind,
    sizes: bool,
    call: impl FnOnce() -> Result<T> + Send,
) -> Result<(T, bool)> {
    let next = tree.join("stream-next");
    fifo(&next)?;
    let streams = tree.join("streams");
    std::fs::create_dir_all(&streams).map_err(|e| Error::io(&streams, e))?;
    let done = AtomicBool::new(false);
    let (called, fed) = std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let result = call();
            done.store(true, Ordering::Release);
            result
        });
        let fed = feed(tree, module, job, kind, sizes, &done);
        let called = handle.join().unwrap_or_else(|_| {
            Err(Error::UpdateModule {
                module: module.to_owned(),
                state: "Download",
                detail: "the thread running the module's Download panicked".into(),
            })
        });
        (called, fed)
    });
    let called = called?;
    let streamed = fed?;
    if !streamed {
        // Unread: the tree looks as it would without streams.
        std::fs::remove_file(&next).map_err(|e| Error::io(&next, e))?;
        std::fs::remove_dir_all(&streams).map_err(|e| Error::io(&streams, e))?;
    }
    Ok((called, streamed))
}

/// Offer every payload file; `Ok(false)` when the module never opened stream-next.
fn feed(
    tree: &Path,
    module: &str,
    job: &InstallJob<'_>,
    kind: Kind,
    sizes: bool,
    done: &AtomicBool,
) -> Result<bool> {
    let Some(first) = open_when_read(&tree.join("stream-next"), done)? else {
        return Ok(false);
    };
    let mut sink = Streams {
        tree: tree.to_owned(),
        module,
        done,
        next: Some(first),
        sizes,
    };
    payload::read_into(job, kind, &mut sink)?;
    // The end of the list: a read of stream-next that returns nothing.
    sink.announce("")?;
    Ok(true)
}
