//! The accept loop and connection handling both transports share: every connection on a task
//! of its own, HTTP/1.1 with hyper's header read timeout, and a graceful shutdown that lets
//! the requests in progress finish.
//!
//! Devices and the `ferry` CLI speak HTTP/1.1, so the connections are served by hyper's HTTP/1
//! server directly, not by axum::serve's auto-detecting one (which also sniffs for HTTP/2 and
//! buffers each connection's first bytes to do so): a device opens a connection per check-in.

use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// [`ConnectionLimits::header_read_timeout`] unless configured (hyper's own default).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may keep a connection without sending a request: past it, the connection
/// is closed, so clients that trickle their headers or sit on idle connections cannot use up
/// the Director's file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// For a whole request head, counted from the moment the server waits for one: on a new
    /// connection, and again after each response on a kept-alive one.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Accept connections on `listener` until `shutdown` completes, each handed to `serve` (with
/// the watcher its connection must be served under) on a task of its own; then wait for the
/// connections still open to finish.
pub(super) async fn accept_loop<S, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    serve: S,
) -> std::io::Result<()>
where
    S: Fn(TcpStream, SocketAddr, Watcher) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Taken before the task starts, so shutdown waits for a connection still in its TLS
        // handshake.
        tokio::spawn(serve(tcp, peer, graceful.watcher()));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serve HTTP/1.1 on `io` with `router` (its requests carrying `extension`, if any) until the
/// client closes the connection, `limits` close it, or shutdown ends it after the request in
/// progress.
pub(super) async fn serve_http1<I, E>(
    io: I,
    peer: SocketAddr,
    router: axum::Router,
    extension: Option<E>,
    limits: ConnectionLimits,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    E: Clone + Send + Sync + 'static,
{
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        if let Some(extension) = &extension {
            request.extensions_mut().insert(extension.clone());
        }
        router.clone().oneshot(request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        // Without a timer hyper would not apply the header read timeout.
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Per-connection accept errors (the peer reset before we got to it) are routine; anything
/// else (out of file descriptors) gets a pause so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        tracing::debug!(error = %e, "accept failed");
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
