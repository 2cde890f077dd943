//! A file's bytes as a response body, read on a blocking thread of its own.
//!
//! Why not `tokio::fs::File` + `ReaderStream`: tokio reads into a buffer of its own and the
//! stream then copies that into another, one blocking-pool hop per small read; for a GiB
//! image that second copy and the hops cost as much CPU as the socket itself. Here each
//! chunk is read once, straight into the buffer that becomes the body's `Bytes`, and the
//! thread reads ahead while hyper writes. Memory per response stays bounded by
//! `CHUNK * (AHEAD + 1)`; a client that goes away drops the body, which ends the thread.

use axum::body::{Body, Bytes};
use std::fs::File;
use std::io::{self, Read};

/// Bytes per read and per body frame.
const CHUNK: usize = 256 * 1024;
/// Chunks read ahead of the socket.
const AHEAD: usize = 4;

/// At most `len` bytes of `file` from its current position.
pub(super) fn body(file: File, len: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut reader = file.take(len);
        loop {
            // read_to_end fills the spare capacity as it is: no zeroing pass over each chunk.
            let mut buf = Vec::with_capacity(CHUNK);
            let chunk = match reader.by_ref().take(CHUNK as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => Ok(Bytes::from(buf)),
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            // A closed channel is a client that went away: stop reading.
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}
