//! A Director set up only through the `ferry` CLI (init, offline root, tokens) and run as a
//! real `ferry director serve` process on 127.0.0.1, with an HTTP client for its APIs.
#![allow(dead_code, clippy::unwrap_used)]

use ferry_tests::daemon::Daemon;
use ferry_tests::process::run_bounded;
pub use ferry_tests::process::Output;
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

pub fn ferry_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferry")
}

/// `ferry ARGS...` in `dir`, bounded; panics unless it exits 0.
pub fn ferry_ok(dir: &Path, args: &[&str]) -> Output {
    let out = ferry_in(dir, args);
    assert_eq!(out.code, 0, "ferry {args:?}\n{out}");
    out
}

pub fn ferry_in(dir: &Path, args: &[&str]) -> Output {
    run_bounded(
        Command::new(ferry_bin()).current_dir(dir).args(args),
        CLI_TIMEOUT,
    )
}

/// A Director directory made by `ferry director init`, with root version 1 signed by an
/// offline key and a write and a read admin token.
#[derive(Debug)]
pub struct DirectorDir {
    _tmp: tempfile::TempDir,
    /// Holds `d/` (the Director) and the offline root key.
    pub base: PathBuf,
    pub config: PathBuf,
    pub write_token: String,
    pub read_token: String,
}

impl DirectorDir {
    pub fn init() -> DirectorDir {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        ferry_ok(&base, &["director", "init", "d", "--listen", "127.0.0.1:0"]);
        ferry_ok(
            &base,
            &[
                "key",
                "gen",
                "--type",
                "ed25519",
                "--out",
                "root.key",
                "--insecure-plaintext",
            ],
        );
        ferry_ok(
            &base,
            &[
                "director",
                "root",
                "init",
                "--root-key",
                "root.key",
                "--targets-key",
                "d/keys/targets.pem",
                "--snapshot-key",
                "d/keys/snapshot.pem",
                "--timestamp-key",
                "d/keys/timestamp.pem",
                "--out",
                "d/roots/1.root.json",
            ],
        );
        let config = base.join("d/director.toml");
        let token = |name: &str, scope: &str| {
            let out = ferry_ok(
                &base,
                &[
                    "director",
                    "token",
                    "create",
                    "--config",
                    "d/director.toml",
                    "--name",
                    name,
                    "--scope",
                    scope,
                    "--json",
                ],
            );
            let v: Value = serde_json::from_str(&out.stdout).unwrap();
            v["token"].as_str().unwrap().to_owned()
        };
        let write_token = token("ops", "write");
        let read_token = token("dashboard", "read");
        DirectorDir {
            _tmp: tmp,
            base,
            config,
            write_token,
            read_token,
        }
    }

    pub fn serve(&self) -> Director {
        let mut cmd = Command::new(ferry_bin());
        cmd.args(["director", "serve", "--config"])
            .arg(&self.config)
            .arg("--json");
        let daemon = Daemon::start(cmd);
        Director {
            url: format!("http://{}", daemon.addr),
            daemon,
            http: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn database(&self) -> PathBuf {
        self.base.join("d/data/director.db")
    }
}

/// A running `ferry director serve`.
#[derive(Debug)]
pub struct Director {
    pub daemon: Daemon,
    pub url: String,
    pub http: Client,
}

impl Director {
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> reqwest::Result<(StatusCode, Vec<u8>)> {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            r = r
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = r.send()?;
        let status = response.status();
        Ok((status, response.bytes()?.to_vec()))
    }

    /// Register `body` (a `SimVehicle::registration`); returns the device token.
    pub fn register(&self, token: &str, body: &Value) -> String {
        let (status, reply) = self
            .request(
                Method::POST,
                "/api/v1/admin/vehicles",
                token,
                Some(serde_json::to_vec(body).unwrap()),
            )
            .unwrap();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply)
        );
        let v: Value = serde_json::from_slice(&reply).unwrap();
        v["device_token"].as_str().unwrap().to_owned()
    }

    pub fn metadata(&self, vin: &str, file: &str, token: &str) -> (StatusCode, Vec<u8>) {
        self.request(
            Method::GET,
            &format!("/api/v1/vehicles/{vin}/metadata/{file}"),
            token,
            None,
        )
        .unwrap()
    }

    pub fn put_manifest(
        &self,
        vin: &str,
        token: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<StatusCode> {
        self.request(
            Method::PUT,
            &format!("/api/v1/vehicles/{vin}/manifest"),
            token,
            Some(body),
        )
        .map(|(s, _)| s)
    }
}

#[allow(unused_imports)]
pub use ferry_tests::sha256_hex;
