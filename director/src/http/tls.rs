//! The Director over mutual TLS (DESIGN.md "Servers and ports"): every client must present a
//! certificate that chains to the fleet CA, or the handshake fails. The device certificate's
//! VINs ([`crate::fleet_ca::certificate_vins`]) ride on each request of the connection as a
//! [`ClientIdentity`] extension, and the device API authenticates by it alone (see
//! `auth::device`). Admin clients need a fleet-CA certificate too (an operator certificate,
//! [`crate::fleet_ca::FleetCa::issue_operator_cert`]), and their bearer token.
//!
//! rustls runs with the ring provider, named explicitly: a build that also enables aws-lc-rs
//! (as other workspace members' dependencies do) would otherwise have no process default.

use super::{router, AppState};
use crate::error::{Error, Result};
use crate::fleet_ca::certificate_vins;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// How long a client may take to complete the TLS handshake before it is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of a TLS connection: the VINs its (verified) certificate names,
/// from the subject CN and `urn:ferry:vin:` URI SANs. Empty when the certificate names none
/// the Director can read, so every device request of that connection is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub vins: Vec<String>,
}

impl ClientIdentity {
    /// Whether the certificate names vehicle `vin`.
    pub fn names(&self, vin: &str) -> bool {
        self.vins.iter().any(|v| v == vin)
    }
}

/// The Director's TLS setup: its certificate chain and key, and the fleet CA that client
/// certificates must chain to. Built (and so checked) before anything listens.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// From PEM: the server certificate (then any intermediates), its private key (PKCS#8,
    /// SEC1 or PKCS#1, unencrypted: the server starts unattended), and the fleet CA
    /// certificate(s) that issue device certificates.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8], fleet_ca_pem: &[u8]) -> Result<Self> {
        let tls_err = |reason: String| Error::Tls { reason };
        let certs = pem_certs(cert_chain_pem, "server certificate")?;
        // The key's PEM error never quotes the key.
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            tls_err(format!(
                "the server key does not load ({e}); expected an unencrypted PEM private key"
            ))
        })?;
        let mut roots = RootCertStore::empty();
        for ca in pem_certs(fleet_ca_pem, "fleet CA certificate")? {
            roots.add(ca).map_err(|e| {
                tls_err(format!(
                    "the fleet CA certificate is not a usable trust anchor ({e}); expected the CA certificate that issues device certificates"
                ))
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| tls_err(format!("the client certificate verifier: {e}")))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(format!("the TLS protocol versions: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| {
                tls_err(format!(
                    "the server certificate and key are refused ({e}); expected the key the server certificate was issued for"
                ))
            })?;
        // The router speaks HTTP/1.1 only (our clients do too).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSettings {
            config: Arc::new(config),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// As [`TlsSettings::from_pem`], from files (the `[tls]` section of director.toml).
    pub fn from_files(cert_chain: &Path, key: &Path, fleet_ca: &Path) -> Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map(Zeroizing::new)
                .map_err(|e| Error::Tls {
                    reason: format!("{}: {e}; expected a readable PEM file", path.display()),
                })
        };
        Self::from_pem(&read(cert_chain)?, &read(key)?, &read(fleet_ca)?)
    }

    /// Replace [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls {
            reason: format!("the {what} PEM does not load ({e}); expected CERTIFICATE blocks"),
        })?;
    if certs.is_empty() {
        return Err(Error::Tls {
            reason: format!(
                "the {what} PEM has no certificate; expected a '-----BEGIN CERTIFICATE-----' block"
            ),
        });
    }
    Ok(certs)
}

/// Serve the Director on `listener` over mutual TLS until `shutdown` completes and open
/// connections finish. Each connection is handled on its own task, so a slow or broken client
/// holds up nobody; a handshake that fails or takes longer than the handshake timeout only
/// drops that connection.
pub async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    tls: TlsSettings,
    limits: ferry_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the director over mutual TLS");
    }
    let acceptor = TlsAcceptor::from(tls.config);
    let router = router(state);
    let handshake_timeout = tls.handshake_timeout;
    ferry_http::accept_loop(listener, limits, shutdown, |tcp, peer, watcher| {
        let acceptor = acceptor.clone();
        let router = router.clone();
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
            let identity = identity_of(stream.get_ref().1);
            tracing::debug!(%peer, vins = ?identity.vins, "TLS client connected");
            ferry_http::serve_http1(stream, peer, router, Some(identity), limits, watcher).await;
        }
    })
    .await
}

/// The identity of a connection's verified client certificate.
fn identity_of(connection: &rustls::ServerConnection) -> ClientIdentity {
    // Client certificates are required, so a finished handshake always has one.
    let Some(leaf) = connection.peer_certificates().and_then(|c| c.first()) else {
        return ClientIdentity { vins: Vec::new() };
    };
    match certificate_vins(leaf) {
        Ok(vins) => ClientIdentity { vins },
        Err(e) => {
            tracing::warn!(error = %e, "client certificate names no vehicle the Director can read");
            ClientIdentity { vins: Vec::new() }
        }
    }
}
