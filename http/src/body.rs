//! Request bodies under the body-rate limit ([`SlowBody`]), and read whole up to a cap in
//! Ferry's words ([`read_body`]).

use crate::Limits;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body that did not keep up with [`Limits::body_timeout`] and [`Limits::min_body_rate`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "request body check failed: {received} bytes arrived in {elapsed:?}; expected the whole body within {timeout:?} plus 1 s per {min_rate} bytes (the server's body rate limit)"
)]
pub struct TooSlow {
    pub received: u64,
    pub elapsed: Duration,
    pub timeout: Duration,
    pub min_rate: u64,
}

/// A request body that fails once it falls behind the rate [`Limits`] allow: by
/// [`Limits::body_deadline`] of what it has delivered, counted from the request head. The
/// clock runs only while someone reads the body: a handler that refuses a request without
/// reading it never waits for it.
#[derive(Debug)]
pub struct SlowBody<B> {
    inner: B,
    limits: Limits,
    started: Instant,
    received: u64,
    /// Made the first time the body waits for bytes: a request whose body is never waited
    /// for (every GET) costs no timer.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> SlowBody<B> {
    pub fn new(inner: B, limits: Limits) -> Self {
        SlowBody {
            inner,
            limits,
            started: Instant::now(),
            received: 0,
            deadline: None,
        }
    }
}

impl<B> http_body::Body for SlowBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                // What has arrived so far sets the deadline; one past what a timer can hold
                // is no deadline.
                let due = this.limits.body_deadline(this.received);
                let Some(at) = this.started.checked_add(due) else {
                    return Poll::Pending;
                };
                let sleep = match &mut this.deadline {
                    Some(sleep) => {
                        if sleep.deadline() != at {
                            sleep.as_mut().reset(at);
                        }
                        sleep
                    }
                    None => this.deadline.insert(Box::pin(tokio::time::sleep_until(at))),
                };
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(TooSlow {
                        received: this.received,
                        elapsed: this.started.elapsed(),
                        timeout: this.limits.body_timeout,
                        min_rate: this.limits.min_body_rate,
                    })))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BodyRefusal {
    #[error("request body check failed: the body is over {limit} bytes; expected at most {limit} bytes for {what}")]
    TooLarge { limit: usize, what: &'static str },
    #[error("{0}")]
    TooSlow(TooSlow),
    #[error("request body check failed: the body could not be read ({reason}); expected a complete body")]
    Broken { reason: String },
}

impl BodyRefusal {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyRefusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyRefusal::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            BodyRefusal::Broken { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// What `error`, from reading a body, says: a [`TooSlow`] anywhere in its chain, or else
    /// a broken body.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> BodyRefusal {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = cause {
            if let Some(slow) = e.downcast_ref::<TooSlow>() {
                return BodyRefusal::TooSlow(slow.clone());
            }
            cause = e.source();
        }
        BodyRefusal::Broken {
            reason: error.to_string(),
        }
    }
}

impl IntoResponse for BodyRefusal {
    fn into_response(self) -> Response {
        tracing::info!(status = self.status().as_u16(), refusal = %self, "request body refused");
        (self.status(), format!("{self}\n")).into_response()
    }
}

/// Read `body` whole, refusing it past `limit` bytes (announced by `Content-Length`: before one
/// byte is read) as too large for `what` (e.g. "a vehicle manifest").
pub async fn read_body(
    mut body: Body,
    limit: usize,
    what: &'static str,
) -> Result<Bytes, BodyRefusal> {
    let too_large = || BodyRefusal::TooLarge { limit, what };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let mut out = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| {
            let inner = e.into_inner();
            BodyRefusal::from_error(inner.as_ref())
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len().saturating_add(data.len()) > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_and_one_over_it_is_refused_by_name() {
        let body = Body::from(vec![7u8; 10]);
        assert_eq!(read_body(body, 10, "a test").await.expect("fits").len(), 10);
        let err = read_body(Body::from(vec![7u8; 11]), 10, "a test")
            .await
            .expect_err("over");
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.to_string().contains("over 10 bytes"), "{err}");
        assert!(err.to_string().contains("for a test"), "{err}");
    }

    #[tokio::test]
    async fn a_body_that_stalls_past_its_deadline_fails_as_too_slow() {
        let limits = Limits {
            body_timeout: Duration::from_millis(300),
            min_body_rate: 10,
            ..Limits::DEFAULT
        };
        // A body that delivers 20 bytes and then never ends: 0.3 s + 20/10 s allowed.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        tx.send(Ok(Frame::data(Bytes::from(vec![0u8; 20]))))
            .await
            .expect("send");
        let stream = Stalled { rx, _tx: tx };
        let body = Body::new(SlowBody::new(stream, limits));
        let err = read_body(body, 1 << 20, "a test")
            .await
            .expect_err("stalled");
        assert_eq!(err.status(), StatusCode::REQUEST_TIMEOUT, "{err}");
        let BodyRefusal::TooSlow(slow) = &err else {
            panic!("{err}")
        };
        assert_eq!(slow.received, 20);
        // Not before the deadline the 20 bytes earned.
        assert!(slow.elapsed >= Duration::from_millis(2300), "{err}");
        assert!(err.to_string().contains("1 s per 10 bytes"), "{err}");
    }

    /// Frames from a channel whose sender is kept, so it never ends.
    struct Stalled {
        rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
        _tx: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    }

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.rx.poll_recv(cx)
        }
    }
}
