//! Writing a received image to its staging file with early writeback.
//!
//! Left to itself, Linux keeps written bytes dirty in the page cache until the final
//! fdatasync: background writeback starts only past `dirty_background_ratio` (10% of RAM by
//! default, GiBs on a large host). The whole image then goes to disk after its last byte
//! arrived, while the CPUs sit idle, and an ECU with little RAM fills its page cache with
//! dirty pages that the rest of the system must wait for. So a flusher thread fdatasyncs the
//! file every [`FLUSH_EVERY`] bytes while the stream goes on (the disk works in parallel with
//! the network and the hashes), and the caller's final fdatasync finds only the tail.
//!
//! The flusher never holds the writer up: a flush asked for while one is still running is
//! merged into the next one.

use super::tee::{self, Tap};
use std::fs::File;
use std::io::Write;
use std::sync::mpsc;

/// Bytes written between two requests to flush: large enough that a flush is one big
/// sequential write, small enough that dirty pages stay a few tens of MiB.
pub const FLUSH_EVERY: u64 = 32 << 20;

/// What [`write_stream`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Whether the stream ended normally (`false`: the producer stopped early).
    pub complete: bool,
    /// How many early flushes ran (the caller's final one not counted).
    pub flushes: u64,
}

/// Write every chunk of `tap` to `file`, asking for a flush every `every` bytes.
pub fn write_stream(file: &File, tap: Tap, every: u64) -> std::io::Result<Written> {
    std::thread::scope(|s| {
        let (ask, asked) = mpsc::sync_channel::<()>(1);
        let flusher = s.spawn(move || -> std::io::Result<u64> {
            let mut flushes = 0;
            for () in asked {
                file.sync_data()?;
                flushes += 1;
            }
            Ok(flushes)
        });
        let complete = write_chunks(file, tap, every, || match ask.try_send(()) {
            // Full: a flush is already asked for, and it will cover these bytes too.
            Ok(()) | Err(mpsc::TrySendError::Full(())) => Ok(()),
            // The flusher failed: stop here; its own error is the one reported.
            Err(mpsc::TrySendError::Disconnected(())) => {
                Err(std::io::Error::other("the image flusher stopped"))
            }
        });
        drop(ask);
        let flushes = flusher
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the image flusher panicked")))?;
        Ok(Written {
            complete: complete?,
            flushes,
        })
    })
}

/// Write every chunk of `tap` to `file`, calling `flush` each time another `every` bytes
/// went out; `Ok(false)` when the stream was cut.
fn write_chunks(
    mut file: &File,
    mut tap: Tap,
    every: u64,
    mut flush: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<bool> {
    let mut unflushed: u64 = 0;
    loop {
        match tap.next_chunk() {
            Ok(Some(chunk)) => {
                file.write_all(chunk.bytes())?;
                unflushed += chunk.bytes().len() as u64;
                if unflushed >= every {
                    unflushed = 0;
                    flush()?;
                }
            }
            Ok(None) => return Ok(true),
            Err(tee::Aborted) => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tee::{Tee, CHUNK};
    use std::io::Read;

    fn stream(tee: Tee, bytes: &[u8], finish: bool) -> std::thread::JoinHandle<()> {
        let bytes = bytes.to_vec();
        let mut tee = tee;
        std::thread::spawn(move || {
            tee.write(&bytes).expect("the writer reads every chunk");
            if finish {
                tee.finish().expect("finish");
            }
        })
    }

    #[test]
    fn every_byte_is_written_and_flushes_run_while_streaming() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("image");
        let file = File::create(&path).expect("create");
        let bytes: Vec<u8> = (0..8 * CHUNK + 123).map(|i| (i * 7 % 251) as u8).collect();
        let mut tee = Tee::new();
        let tap = tee.tap();
        let producer = stream(tee, &bytes, true);
        let written = write_stream(&file, tap, 2 * CHUNK as u64).expect("written");
        producer.join().expect("producer");
        assert!(written.complete);
        // The first request always finds the flusher's queue empty.
        assert!(written.flushes >= 1, "{written:?}");
        let mut back = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut back))
            .expect("read back");
        assert_eq!(back, bytes);
    }

    #[test]
    fn a_cut_stream_is_not_complete() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = File::create(dir.path().join("image")).expect("create");
        let mut tee = Tee::new();
        let tap = tee.tap();
        let producer = stream(tee, &[1; 3 * CHUNK], false);
        let written = write_stream(&file, tap, FLUSH_EVERY).expect("written");
        producer.join().expect("producer");
        assert_eq!(
            written,
            Written {
                complete: false,
                flushes: 0
            }
        );
    }
}
