//! The Director over mutual TLS with a fleet CA made per test: a device is its certificate,
//! clients are reqwest's blocking one, each with its own certificate. No assignments are made
//! over TLS, so no Image repository is needed.
#![allow(dead_code, clippy::unwrap_used)]

use super::server::{self, send, Transport, WAIT};
use ferry_core::{Clock, SystemClock};
use ferry_director::fleet_ca::{FleetCa, IssuedCert};
use ferry_director::http::{TlsSettings, HANDSHAKE_TIMEOUT};
use ferry_director::image_repo::{TargetSource, Unconfigured};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;

pub const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A Director over mutual TLS.
pub type Server = server::Server;

/// No assignments are made here, so no Image repository is needed.
pub fn no_images() -> Arc<dyn TargetSource> {
    Arc::new(Unconfigured)
}

pub fn fleet_ca() -> FleetCa {
    FleetCa::generate("Ferry test fleet CA", SystemClock.now(), 10 * YEAR).unwrap()
}

/// A server certificate from `ca` for `names`, valid a year.
pub fn server_cert(ca: &FleetCa, names: &[&str]) -> IssuedCert {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    ca.issue_server_cert(&names, SystemClock.now(), YEAR)
        .unwrap()
}

/// TLS settings serving `cert` and admitting clients `ca` issued.
pub fn tls_settings(ca: &FleetCa, cert: &IssuedCert) -> TlsSettings {
    TlsSettings::from_pem(
        cert.cert_pem.as_bytes(),
        cert.key_pem.as_bytes(),
        ca.cert_pem().as_bytes(),
    )
    .unwrap()
}

/// A Director whose device certificates and server certificate come from `ca`.
pub fn start(ca: &FleetCa) -> Server {
    start_with(ca, HANDSHAKE_TIMEOUT)
}

/// The same, with `handshake_timeout`; admin calls go through an operator certificate (it
/// names no vehicle).
pub fn start_with(ca: &FleetCa, handshake_timeout: Duration) -> Server {
    let cert = server_cert(ca, &["localhost", "127.0.0.1"]);
    let tls = tls_settings(ca, &cert).with_handshake_timeout(handshake_timeout);
    let ops = ca
        .issue_operator_cert("ops-console", SystemClock.now(), YEAR)
        .unwrap();
    Server::spawn(Transport::Tls(tls), client(ca, Some(&ops)), no_images(), ())
}

/// A client trusting only `ca` for the server certificate, presenting `identity` if any.
pub fn client(ca: &FleetCa, identity: Option<&IssuedCert>) -> Client {
    let ca_pem = ca.cert_pem();
    let mut builder = Client::builder()
        .timeout(WAIT)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap());
    if let Some(issued) = identity {
        let pem = format!("{}{}", issued.cert_pem, issued.key_pem.as_str());
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A device request: method, path under `/api/v1/vehicles/{vin}/`, optional bearer token
/// and body. The response's status and body, or the transport error (a refused handshake).
pub fn device(
    server: &Server,
    client: &Client,
    method: Method,
    vin: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let url = server.url(&format!("/api/v1/vehicles/{vin}/{path}"));
    let (status, _, body) = send(client, method, &url, token, body)?;
    Ok((status, body))
}

/// A device fetch of metadata `file`, answered over HTTP.
pub fn get(server: &Server, client: &Client, vin: &str, file: &str) -> (StatusCode, Vec<u8>) {
    let path = format!("metadata/{file}");
    device(server, client, Method::GET, vin, &path, None, None).unwrap()
}

/// A device fetch of `timestamp.json`, or the transport error.
pub fn get_result(
    server: &Server,
    client: &Client,
    vin: &str,
) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let path = "metadata/timestamp.json";
    device(server, client, Method::GET, vin, path, None, None)
}

/// A device upload of manifest `body`, answered over HTTP: status and body as text.
pub fn put(server: &Server, client: &Client, vin: &str, body: Vec<u8>) -> (StatusCode, String) {
    let method = Method::PUT;
    let (status, body) = device(server, client, method, vin, "manifest", None, Some(body)).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The request got no HTTP answer: the TLS layer refused the client. Returns the error chain.
pub fn assert_refused(result: Result<(StatusCode, Vec<u8>), reqwest::Error>, what: &str) -> String {
    match result {
        Ok((status, body)) => panic!(
            "{what}: answered {status}: {}",
            String::from_utf8_lossy(&body)
        ),
        Err(e) => {
            assert!(!e.is_timeout(), "{what}: timed out, not refused: {e:?}");
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                chain.push_str(&format!(": {s}"));
                source = s.source();
            }
            chain
        }
    }
}
