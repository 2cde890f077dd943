//! Mutual TLS for any Ferry server: every client must present a certificate that chains to the
//! configured client CA (a fleet CA, or one certificate pinned as its own CA), or the handshake
//! fails. The Director serves its device and admin APIs this way, and a Secondary may serve the
//! in-vehicle link this way. rustls runs with the ring provider, named explicitly: a build that
//! also enables aws-lc-rs (as some dependencies do) would otherwise have no process default.

use crate::{accept_loop, serve_http1, Limits};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// How long a client may take to complete the TLS handshake before it is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's TLS setup: its certificate chain and key, and the CA that client certificates
/// must chain to. Built (and so checked) before anything listens.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From PEM: the server certificate (then any intermediates), its private key (PKCS#8,
    /// SEC1 or PKCS#1, unencrypted: the server starts unattended), and the certificate(s) of
    /// the CA client certificates must chain to, called `client_ca` in messages (e.g. "fleet
    /// CA certificate"). The error names what does not load, never quoting the key.
    pub fn from_pem(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        client_ca_pem: &[u8],
        client_ca: &str,
    ) -> Result<Self, String> {
        let certs = pem_certs(cert_chain_pem, "server certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            format!("the server key does not load ({e}); expected an unencrypted PEM private key")
        })?;
        let mut roots = RootCertStore::empty();
        for ca in pem_certs(client_ca_pem, client_ca)? {
            roots.add(ca).map_err(|e| {
                format!(
                    "the {client_ca} is not a usable trust anchor ({e}); expected the CA certificate that issues the client certificates"
                )
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("the client certificate verifier: {e}"))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("the TLS protocol versions: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "the server certificate and key are refused ({e}); expected the key the server certificate was issued for"
                )
            })?;
        // Ferry's routers speak HTTP/1.1 only (its clients do too).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// As [`ServerTls::from_pem`], from files.
    pub fn from_files(
        cert_chain: &Path,
        key: &Path,
        client_ca_file: &Path,
        client_ca: &str,
    ) -> Result<Self, String> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map(Zeroizing::new)
                .map_err(|e| format!("{}: {e}; expected a readable PEM file", path.display()))
        };
        Self::from_pem(
            &read(cert_chain)?,
            &read(key)?,
            &read(client_ca_file)?,
            client_ca,
        )
    }

    /// Replace [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the {what} PEM does not load ({e}); expected CERTIFICATE blocks"))?;
    if certs.is_empty() {
        return Err(format!(
            "the {what} PEM has no certificate; expected a '-----BEGIN CERTIFICATE-----' block"
        ));
    }
    Ok(certs)
}

/// Serve `router` over mutual TLS on `listener` under `limits` until `shutdown` completes and
/// open connections finish. Each request of a connection carries what `identify` makes of the
/// verified client (as an extension), if anything. A handshake that fails or takes longer
/// than the handshake timeout only drops that connection.
pub async fn serve_tls<E, F>(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    tls: ServerTls,
    identify: F,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    E: Clone + Send + Sync + 'static,
    F: Fn(&ServerConnection) -> Option<E> + Clone + Send + Sync + 'static,
{
    let acceptor = TlsAcceptor::from(tls.config);
    let handshake_timeout = tls.handshake_timeout;
    accept_loop(listener, limits, shutdown, |tcp, peer, watcher| {
        let acceptor = acceptor.clone();
        let router = router.clone();
        let identify = identify.clone();
        async move {
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, timeout = ?handshake_timeout, "TLS handshake timed out");
                    return;
                }
            };
            let identity = identify(stream.get_ref().1);
            serve_http1(stream, peer, router, identity, limits, watcher).await;
        }
    })
    .await
}
