//! The accept loop and connection handling every Ferry server shares: each connection on a
//! task of its own, at most [`Limits::connections_per_address`] per client address, HTTP/1.1
//! under the header and body limits, and a graceful shutdown that lets the requests in
//! progress finish.
//!
//! Devices, Primaries and the `ferry` CLI speak HTTP/1.1, so connections are served by hyper's
//! HTTP/1 server directly, not by axum::serve's auto-detecting one (which also sniffs for
//! HTTP/2, buffering each connection's first bytes to do so, and applies no timeouts at all).

use crate::body::SlowBody;
use crate::Limits;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// Serve `router` over plain HTTP on `listener` under `limits` until `shutdown` completes and
/// the connections still open finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    accept_loop(listener, limits, shutdown, |tcp, peer, watcher| {
        serve_http1(tcp, peer, router.clone(), None::<()>, limits, watcher)
    })
    .await
}

/// Accept connections on `listener` until `shutdown` completes, each handed to `serve` (with
/// the watcher its connection must be served under) on a task of its own; then wait for the
/// connections still open to finish. A connection past the per-address cap is closed at once.
pub async fn accept_loop<S, F>(
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    serve: S,
) -> std::io::Result<()>
where
    S: Fn(TcpStream, SocketAddr, Watcher) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let open = PerAddress::default();
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
        let Some(slot) = open.take(peer.ip(), limits.connections_per_address) else {
            drop(tcp);
            continue;
        };
        // Taken before the task starts, so shutdown waits for a connection still in its TLS
        // handshake.
        let connection = serve(tcp, peer, graceful.watcher());
        tokio::spawn(async move {
            connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serve HTTP/1.1 on `io` with `router` until the client closes the connection, `limits` close
/// it, or shutdown ends it after the request in progress. Every request carries the caller's
/// address (`ConnectInfo<SocketAddr>`) and `extension`, if any, and its body is a
/// [`SlowBody`].
pub async fn serve_http1<I, E>(
    io: I,
    peer: SocketAddr,
    router: axum::Router,
    extension: Option<E>,
    limits: Limits,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    E: Clone + Send + Sync + 'static,
{
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        if let Some(extension) = &extension {
            parts.extensions.insert(extension.clone());
        }
        let body = axum::body::Body::new(SlowBody::new(body, limits));
        router.clone().oneshot(Request::from_parts(parts, body))
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

/// Open connections per client address, and whether a refusal at the cap was logged.
#[derive(Debug, Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, (usize, bool)>>>);

/// One connection counted against its address until dropped.
#[derive(Debug)]
struct Slot {
    open: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (count, warned) = open.entry(ip).or_insert((0, false));
        if *count >= cap {
            // Once per burst at warn: a flood must not flood the log too.
            if !*warned {
                *warned = true;
                tracing::warn!(%ip, cap, "connection refused: the address holds as many connections as one address may (connections_per_address)");
            } else {
                tracing::debug!(%ip, cap, "connection refused: connections_per_address");
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> usize {
        let open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).map_or(0, |(count, _)| *count)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((count, warned)) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            *warned = false;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_a_closed_connection_frees_its_slot() {
        let open = PerAddress::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let mut held: Vec<Slot> = (0..3)
            .map(|_| open.take(a, 3).expect("under cap"))
            .collect();
        assert!(open.take(a, 3).is_none());
        assert!(open.take(a, 3).is_none());
        let other = open.take(b, 3).expect("another address has its own count");
        held.pop();
        assert_eq!(open.count(a), 2);
        held.push(open.take(a, 3).expect("a slot freed"));
        drop(held);
        drop(other);
        assert_eq!(open.count(a), 0);
        assert!(open.0.lock().expect("lock").is_empty());
    }
}
