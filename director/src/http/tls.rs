//! The Director over mutual TLS (DESIGN.md "Servers and ports"): every client must present a
//! certificate that chains to the fleet CA, or the handshake fails. The device certificate's
//! VINs ([`crate::fleet_ca::certificate_vins`]) ride on each request of the connection as a
//! [`ClientIdentity`] extension, and the device API authenticates by it alone (see
//! `auth::device`). Admin clients need a fleet-CA certificate too (an operator certificate,
//! [`crate::fleet_ca::FleetCa::issue_operator_cert`]), and their bearer token.
//!
//! The handshake, the fleet-CA check and the accept loop are ferry-http's
//! ([`ferry_http::tls`]), shared with the Secondary's in-vehicle link.

use super::{router, AppState};
use crate::error::{Error, Result};
use crate::fleet_ca::{certificate_relay, certificate_vins};
use ferry_http::tls::ServerTls;
pub use ferry_http::tls::HANDSHAKE_TIMEOUT;
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

/// Who is on the other end of a TLS connection: the VINs its (verified) certificate names,
/// from the subject CN and `urn:ferry:vin:` URI SANs. Empty when the certificate names none
/// the Director can read, so every device request of that connection is refused.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientIdentity {
    pub vins: Vec<String>,
    /// A certificate whose CN is `relay:NAME` ([`crate::fleet_ca::certificate_relay`]): the
    /// connection claims to be gateway relay NAME. It speaks for vehicles only once the store
    /// finds this certificate registered for an unrevoked relay of that name
    /// ([`super::relayed`]); it never passes as a vehicle, and the admin API refuses it.
    pub relay: Option<RelayCertificate>,
}

/// A relay's client certificate as presented: the relay it names and its SHA-256 (of the
/// DER), to compare with the one `ferry admin relay add NAME --cert` registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCertificate {
    pub name: String,
    pub sha256: [u8; 32],
}

impl ClientIdentity {
    /// Whether the certificate names vehicle `vin`.
    pub fn names(&self, vin: &str) -> bool {
        self.vins.iter().any(|v| v == vin)
    }
}

/// The Director's TLS setup: its certificate chain and key, and the fleet CA that client
/// certificates must chain to ([`ferry_http::tls::ServerTls`]). Built (and so checked) before
/// anything listens.
#[derive(Debug, Clone)]
pub struct TlsSettings(ServerTls);

impl TlsSettings {
    /// From PEM: the server certificate (then any intermediates), its private key (PKCS#8,
    /// SEC1 or PKCS#1, unencrypted: the server starts unattended), and the fleet CA
    /// certificate(s) that issue device certificates.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8], fleet_ca_pem: &[u8]) -> Result<Self> {
        ServerTls::from_pem(cert_chain_pem, key_pem, fleet_ca_pem, FLEET_CA)
            .map(TlsSettings)
            .map_err(|reason| Error::Tls { reason })
    }

    /// As [`TlsSettings::from_pem`], from files (the `[tls]` section of director.toml).
    pub fn from_files(cert_chain: &Path, key: &Path, fleet_ca: &Path) -> Result<Self> {
        ServerTls::from_files(cert_chain, key, fleet_ca, FLEET_CA)
            .map(TlsSettings)
            .map_err(|reason| Error::Tls { reason })
    }

    /// Replace [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(self, timeout: Duration) -> Self {
        TlsSettings(self.0.with_handshake_timeout(timeout))
    }
}

/// What the client CA is called in the Director's messages.
const FLEET_CA: &str = "fleet CA certificate";

/// Serve the Director on `listener` over mutual TLS until `shutdown` completes and open
/// connections finish; each request carries its connection's [`ClientIdentity`].
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
    let identify = |connection: &rustls::ServerConnection| {
        let identity = identity_of(connection);
        tracing::debug!(vins = ?identity.vins, relay = ?identity.relay.as_ref().map(|r| &r.name), "TLS client connected");
        Some(identity)
    };
    ferry_http::tls::serve_tls(listener, router(state), limits, tls.0, identify, shutdown).await
}

/// The identity of a connection's verified client certificate.
fn identity_of(connection: &rustls::ServerConnection) -> ClientIdentity {
    // Client certificates are required, so a finished handshake always has one.
    let Some(leaf) = connection.peer_certificates().and_then(|c| c.first()) else {
        return ClientIdentity::default();
    };
    if let Some(name) = certificate_relay(leaf) {
        use sha2::Digest;
        return ClientIdentity {
            vins: Vec::new(),
            relay: Some(RelayCertificate {
                name,
                sha256: sha2::Sha256::digest(leaf.as_ref()).into(),
            }),
        };
    }
    match certificate_vins(leaf) {
        Ok(vins) => ClientIdentity { vins, relay: None },
        Err(e) => {
            tracing::warn!(error = %e, "client certificate names no vehicle the Director can read");
            ClientIdentity::default()
        }
    }
}
