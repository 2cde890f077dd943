//! One byte stream, many consumers at once: the image's bytes are read once (from the
//! network or a file) and each consumer — a hash algorithm, the staging file, an ECU's upload
//! — gets every chunk on a thread of its own. So the hashes are computed in parallel with
//! each other and with the I/O, and nothing is written to disk only to be read back.
//!
//! Memory is bounded, whatever the image size: chunks are [`CHUNK`] bytes, each consumer
//! queues at most [`QUEUE`] of them (the producer waits for the slowest one), and chunk
//! buffers are reused once every consumer is done with them.
//!
//! A consumer that stops reading (it refused the bytes) closes its tap: the producer's next
//! [`Tee::write`] fails with [`TapClosed`] and the producer stops. A producer that stops
//! before [`Tee::finish`] (the download failed) ends every tap with [`Aborted`], so no
//! consumer mistakes a cut stream for a whole one.

use std::io::Read;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Bytes per chunk: large enough that per-chunk costs (a channel send per consumer, a wake-up)
/// vanish next to hashing a chunk, small enough that the queues stay a few MiB.
pub const CHUNK: usize = 1 << 20;
/// Chunks queued per consumer before the producer waits.
pub const QUEUE: usize = 4;

/// A consumer stopped reading before the end (it refused the stream or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a receiver of the image stream stopped reading before its end")]
pub struct TapClosed;

/// The producer stopped before the end of the stream (its source failed or was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the image stream stopped before its end: its sender failed")]
pub struct Aborted;

/// Why [`Tee::read_from`] failed: the source (worth a retry, perhaps) or a consumer that
/// stopped (never worth one).
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error("reading the image stream failed: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Closed(TapClosed),
}

/// One chunk of the stream, shared by every consumer; its buffer goes back to the producer's
/// pool when the last consumer drops it.
#[derive(Debug)]
pub struct Chunk {
    buf: Vec<u8>,
    len: usize,
    home: mpsc::Sender<Vec<u8>>,
}

impl Chunk {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // The pool is gone once the producer is: the buffer is then simply freed.
        let _ = self.home.send(std::mem::take(&mut self.buf));
    }
}

#[derive(Debug)]
enum Msg {
    Data(Arc<Chunk>),
    End,
}

/// The producer's side.
#[derive(Debug)]
pub struct Tee {
    taps: Vec<tokio::sync::mpsc::Sender<Msg>>,
    pool_tx: mpsc::Sender<Vec<u8>>,
    pool_rx: mpsc::Receiver<Vec<u8>>,
    /// The chunk being filled: `current[..filled]` holds bytes not yet sent.
    current: Vec<u8>,
    filled: usize,
    /// Buffers allocated so far (the rest were reused): at most the chunks in flight.
    allocated: usize,
}

impl Default for Tee {
    fn default() -> Self {
        Tee::new()
    }
}

impl Tee {
    pub fn new() -> Tee {
        let (pool_tx, pool_rx) = mpsc::channel();
        Tee {
            taps: Vec::new(),
            pool_tx,
            pool_rx,
            current: vec![0; CHUNK],
            filled: 0,
            allocated: 1,
        }
    }

    /// A new consumer; it sees every byte written after this call.
    pub fn tap(&mut self) -> Tap {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        self.taps.push(tx);
        Tap {
            rx,
            current: None,
            pos: 0,
            ended: false,
        }
    }

    fn fresh_buffer(&mut self) -> Vec<u8> {
        self.pool_rx.try_recv().unwrap_or_else(|_| {
            self.allocated += 1;
            vec![0; CHUNK]
        })
    }

    /// Send the bytes gathered so far to every consumer.
    fn dispatch(&mut self) -> Result<(), TapClosed> {
        if self.filled == 0 {
            return Ok(());
        }
        let next = self.fresh_buffer();
        let buf = std::mem::replace(&mut self.current, next);
        let chunk = Arc::new(Chunk {
            buf,
            len: std::mem::take(&mut self.filled),
            home: self.pool_tx.clone(),
        });
        for tap in &self.taps {
            tap.blocking_send(Msg::Data(Arc::clone(&chunk)))
                .map_err(|_| TapClosed)?;
        }
        Ok(())
    }

    /// Append `data` to the stream.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), TapClosed> {
        while !data.is_empty() {
            let n = data.len().min(CHUNK - self.filled);
            self.current[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == CHUNK {
                self.dispatch()?;
            }
        }
        Ok(())
    }

    /// One `read` from `reader` straight into the chunk being filled (no extra copy).
    /// Returns the byte count, 0 at the end of `reader`.
    pub fn read_from(&mut self, reader: &mut dyn Read) -> Result<usize, FillError> {
        let n = reader
            .read(&mut self.current[self.filled..])
            .map_err(FillError::Read)?;
        self.filled += n;
        if self.filled == CHUNK {
            self.dispatch().map_err(FillError::Closed)?;
        }
        Ok(n)
    }

    /// The end of a complete stream: every consumer gets the last bytes, then the end.
    pub fn finish(mut self) -> Result<(), TapClosed> {
        self.dispatch()?;
        for tap in &self.taps {
            // A consumer may close once it has every byte it expected (an HTTP body of known
            // length is dropped when its last byte is written); it missed nothing.
            let _ = tap.blocking_send(Msg::End);
        }
        Ok(())
    }
}

/// A consumer's side: chunks one at a time ([`Tap::next_chunk`], [`Tap::poll_chunk`]) or a
/// byte stream ([`Read`]). Dropping it closes it.
#[derive(Debug)]
pub struct Tap {
    rx: tokio::sync::mpsc::Receiver<Msg>,
    /// The chunk [`Read`] is in, and how far.
    current: Option<Arc<Chunk>>,
    pos: usize,
    ended: bool,
}

impl Tap {
    fn take(&mut self, msg: Option<Msg>) -> Result<Option<Arc<Chunk>>, Aborted> {
        match msg {
            Some(Msg::Data(chunk)) => Ok(Some(chunk)),
            Some(Msg::End) => {
                self.ended = true;
                Ok(None)
            }
            None if self.ended => Ok(None),
            None => Err(Aborted),
        }
    }

    /// The next chunk, waiting for it; `None` at the end of a complete stream. Not for use
    /// on an async runtime's own threads (it blocks).
    pub fn next_chunk(&mut self) -> Result<Option<Arc<Chunk>>, Aborted> {
        if self.ended {
            return Ok(None);
        }
        let msg = self.rx.blocking_recv();
        self.take(msg)
    }

    /// [`Tap::next_chunk`] for async consumers (an HTTP request body).
    pub fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Arc<Chunk>>, Aborted>> {
        if self.ended {
            return Poll::Ready(Ok(None));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(msg) => Poll::Ready(self.take(msg)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Read for Tap {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(chunk) = &self.current {
                let rest = &chunk.bytes()[self.pos..];
                if !rest.is_empty() {
                    let n = rest.len().min(out.len());
                    out[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            self.current = None;
            self.pos = 0;
            match self.next_chunk().map_err(std::io::Error::other)? {
                Some(chunk) => self.current = Some(chunk),
                None => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 253) as u8).collect()
    }

    #[test]
    fn every_tap_gets_every_byte_in_order() {
        let bytes = data(3 * CHUNK + 12345);
        let mut tee = Tee::new();
        let taps: Vec<Tap> = (0..3).map(|_| tee.tap()).collect();
        std::thread::scope(|s| {
            let readers: Vec<_> = taps
                .into_iter()
                .map(|mut tap| {
                    s.spawn(move || {
                        let mut got = Vec::new();
                        tap.read_to_end(&mut got).map(|_| got)
                    })
                })
                .collect();
            // Odd write sizes: chunk boundaries never line up with writes.
            for piece in bytes.chunks(70_001) {
                tee.write(piece).unwrap();
            }
            tee.finish().unwrap();
            for r in readers {
                assert!(r.join().unwrap().unwrap() == bytes);
            }
        });
    }

    #[test]
    fn a_stream_cut_before_finish_is_an_error_for_every_tap() {
        let mut tee = Tee::new();
        let mut tap = tee.tap();
        tee.write(&data(CHUNK + 1)).unwrap();
        drop(tee);
        let mut got = Vec::new();
        let err = tap.read_to_end(&mut got).unwrap_err();
        assert!(err.to_string().contains("stopped before its end"), "{err}");
        assert_eq!(
            got.len(),
            CHUNK,
            "the whole chunks sent before the cut arrive"
        );
    }

    #[test]
    fn a_closed_tap_stops_the_producer() {
        let mut tee = Tee::new();
        let tap = tee.tap();
        drop(tap);
        assert_eq!(tee.write(&data(CHUNK)), Err(TapClosed));
    }

    #[test]
    fn memory_is_bounded_by_the_queues_and_buffers_are_reused() {
        let mut tee = Tee::new();
        let taps: Vec<Tap> = (0..2).map(|_| tee.tap()).collect();
        std::thread::scope(|s| {
            for mut tap in taps {
                s.spawn(move || while let Ok(Some(_)) = tap.next_chunk() {});
            }
            for _ in 0..256 {
                tee.write(&data(CHUNK)).unwrap();
            }
            // 256 MiB went through; at most the queued chunks, one held by each consumer,
            // the one being filled and one in transit were ever allocated.
            assert!(tee.allocated <= 2 * QUEUE + 4, "{} buffers", tee.allocated);
            tee.finish().unwrap();
        });
    }
}
