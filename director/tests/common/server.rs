//! The Director served in-process on 127.0.0.1 on its own tokio runtime, over plain HTTP or
//! mutual TLS, and the blocking requests (reqwest, bounded timeouts) the tests make of it.
#![allow(dead_code, clippy::unwrap_used)]

use super::car::Car;
use ferry_core::{Clock, SystemClock};
use ferry_director::http::{serve, serve_tls, AppState, Limits, TlsSettings};
use ferry_director::image_repo::TargetSource;
use ferry_director::manifests::ManifestPolicy;
use ferry_director::model::Scope;
use ferry_director::vehicle_metadata::{Lifetimes, OnlineKeys};
use ferry_director::{SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey};
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Bound on every request, and on a server's return after shutdown.
pub const WAIT: Duration = Duration::from_secs(20);

/// A multi-threaded runtime of `workers` threads with I/O and timers.
pub fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A Director database in a temporary directory with a fresh director root imported.
pub struct Director {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    /// The director root's bytes (version 1).
    pub root: Vec<u8>,
    pub keys: OnlineKeys,
}

impl Director {
    pub fn new() -> Director {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("director.db")).unwrap());
        let (root, keys, _) = super::director_root(store.as_ref(), SystemClock.now());
        Director {
            dir,
            store,
            root,
            keys,
        }
    }

    /// What the handlers share: this store and keys, default lifetimes, `targets`.
    fn state(&self, targets: Arc<dyn TargetSource>) -> AppState {
        AppState::new(
            self.store.clone(),
            self.keys.clone(),
            Lifetimes::default(),
            targets,
            Arc::new(SystemClock),
        )
    }
}

/// How the Director is served: plain HTTP, devices presenting bearer tokens, or mutual TLS,
/// devices presenting certificates.
pub enum Transport {
    Http,
    Tls(TlsSettings),
}

impl Transport {
    fn scheme(&self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Tls(_) => "https",
        }
    }

    /// `serve` or `serve_tls` on `listener` with `limits`, spawned on `runtime`, until
    /// `shutdown`.
    fn spawn(
        self,
        runtime: &Runtime,
        listener: tokio::net::TcpListener,
        state: AppState,
        limits: Limits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<std::io::Result<()>> {
        match self {
            Transport::Http => runtime.spawn(serve(listener, state, limits, shutdown)),
            Transport::Tls(tls) => runtime.spawn(serve_tls(listener, state, tls, limits, shutdown)),
        }
    }
}

/// A Director serving on 127.0.0.1 (2 worker threads) until dropped, with an admin token of
/// each scope. `R` is what the tests keep beside it: the Image repository its assignments
/// read, or nothing.
pub struct Server<R = ()> {
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    /// The director root (version 1) devices start from.
    pub root: Vec<u8>,
    /// Admin tokens of scope write and read.
    pub write: String,
    pub read: String,
    /// The client of admin calls.
    pub client: Client,
    pub repo: R,
    scheme: &'static str,
    runtime: Option<Runtime>,
    _dir: tempfile::TempDir,
}

impl<R> Drop for Server<R> {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl<R> Server<R> {
    /// Serve a new Director over `transport`, its assignments reading `targets`; admin calls
    /// go through `client`.
    pub fn spawn(
        transport: Transport,
        client: Client,
        targets: Arc<dyn TargetSource>,
        repo: R,
    ) -> Server<R> {
        Self::spawn_limited(transport, Limits::default(), client, targets, repo)
    }

    /// [`Server::spawn`] with connection `limits` other than the defaults.
    pub fn spawn_limited(
        transport: Transport,
        limits: Limits,
        client: Client,
        targets: Arc<dyn TargetSource>,
        repo: R,
    ) -> Server<R> {
        Self::spawn_configured(
            transport,
            limits,
            ManifestPolicy::DEFAULT,
            client,
            targets,
            repo,
        )
    }

    /// [`Server::spawn_limited`] taking manifests as `policy` says.
    pub fn spawn_configured(
        transport: Transport,
        limits: Limits,
        policy: ManifestPolicy,
        client: Client,
        targets: Arc<dyn TargetSource>,
        repo: R,
    ) -> Server<R> {
        let director = Director::new();
        let (_, write) = director
            .store
            .create_admin_token("ops", Scope::Write, None)
            .unwrap();
        let (_, read) = director
            .store
            .create_admin_token("dashboard", Scope::Read, None)
            .unwrap();
        let state = director.state(targets).with_manifest_policy(policy);
        let runtime = runtime(2);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = transport.scheme();
        transport.spawn(&runtime, listener, state, limits, std::future::pending());
        Server {
            addr,
            store: director.store,
            root: director.root,
            write,
            read,
            client,
            repo,
            scheme,
            runtime: Some(runtime),
            _dir: director.dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// A request of the admin client: status, headers and body.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        send(&self.client, method, &self.url(path), token, body).unwrap()
    }

    /// An admin call: status and body as text.
    pub fn admin(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let (status, _, body) = self.request(
            method,
            &format!("/api/v1/admin{path}"),
            token,
            body.map(|b| serde_json::to_vec(&b).unwrap()),
        );
        (status, String::from_utf8(body).unwrap())
    }

    /// Register a vehicle with a primary (`{vin}-p`, hardware "ivi", ed25519) and a secondary
    /// (`{vin}-s`, hardware "tcu", ECDSA P-256).
    pub fn register(&self, vin: &str) -> Car {
        let primary = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let secondary = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let body = json!({
            "vin": vin,
            "ecus": [
                {"serial": format!("{vin}-p"), "hardware_id": "ivi",
                 "public_key": primary.public_key(), "primary": true},
                {"serial": format!("{vin}-s"), "hardware_id": "tcu",
                 "public_key": secondary.public_key(), "primary": false},
            ]
        });
        let (status, text) = self.admin(Method::POST, "/vehicles", Some(&self.write), Some(body));
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reply["vin"], vin);
        Car {
            vin: vin.into(),
            token: reply["device_token"].as_str().unwrap().to_owned(),
            primary,
            secondary,
        }
    }

    /// The vehicle's status as the admin API reads it.
    pub fn status(&self, vin: &str) -> Value {
        let (status, text) = self.admin(
            Method::GET,
            &format!("/vehicles/{vin}/status"),
            Some(&self.read),
            None,
        );
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// How many manifests of `vin` the store holds, accepted or refused.
    pub fn manifests(&self, vin: &str) -> u64 {
        self.store.count_manifests(vin, None).unwrap()
    }
}

/// A request with an optional bearer token and JSON body: the response's status, headers
/// and body, or the transport error (such as a refused handshake).
pub fn send(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> reqwest::Result<(StatusCode, HeaderMap, Vec<u8>)> {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let response = request.send()?;
    let status = response.status();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes()?.to_vec()))
}

/// Serve a new Director over `transport` with a shutdown signal, signal at once, and expect
/// the server (`what`) to return Ok within [`WAIT`].
pub fn assert_returns_after_shutdown(
    what: &str,
    transport: Transport,
    targets: Arc<dyn TargetSource>,
) {
    let director = Director::new();
    let runtime = runtime(1);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = director.state(targets);
    let task = transport.spawn(&runtime, listener, state, Limits::default(), async {
        let _ = stopped.await;
    });
    stop.send(()).unwrap();
    let result = runtime
        .block_on(async { tokio::time::timeout(WAIT, task).await })
        .unwrap_or_else(|_| panic!("{what} did not return after shutdown"))
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
