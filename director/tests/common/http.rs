//! The Director over plain HTTP, as the API tests serve it: devices authenticate with bearer
//! tokens, assignments read the catalogue Image repository (ferry-image-repo's editor and
//! static server, hashed bins) whose root the Director pins.
#![allow(dead_code, clippy::unwrap_used)]

use super::car::{verified_targets, Car};
use super::image_repo::{catalogue, ImageRepo};
use super::server::{self, Transport, WAIT};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A Director over plain HTTP with the Image repository its assignments read.
pub type Server = server::Server<ImageRepo>;

impl Server {
    /// A Director assigning from [`catalogue`].
    pub fn start() -> Server {
        Server::with_repo(catalogue())
    }

    pub fn with_repo(repo: ImageRepo) -> Server {
        let client = Client::builder().timeout(WAIT).build().unwrap();
        Server::spawn(Transport::Http, client, repo.source(), repo)
    }

    /// A device fetch of `file` with `token`; a 200 must be uncached JSON.
    pub fn metadata(&self, vin: &str, file: &str, token: &str) -> (StatusCode, Vec<u8>) {
        let (status, headers, body) = self.request(
            Method::GET,
            &format!("/api/v1/vehicles/{vin}/metadata/{file}"),
            Some(token),
            None,
        );
        if status == StatusCode::OK {
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(headers["cache-control"], "no-store");
        }
        (status, body)
    }

    /// A device upload of manifest `body` with `token`: status and body as text.
    pub fn put_manifest(&self, vin: &str, token: &str, body: Vec<u8>) -> (StatusCode, String) {
        let (status, _, body) = self.request(
            Method::PUT,
            &format!("/api/v1/vehicles/{vin}/manifest"),
            Some(token),
            Some(body),
        );
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Assigns `targets` to `car` and expects `status` with a body containing each of
    /// `needles`; the vehicle must be left with no assignment.
    pub fn assign_refused(&self, car: &Car, targets: Value, status: StatusCode, needles: &[&str]) {
        let (code, text) = assign(self, &car.vin, targets);
        assert_eq!(code, status, "{text}");
        for needle in needles {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert_eq!(assignments(self, &car.vin), Vec::<Value>::new());
    }
}

/// Assign `targets` to `vin` under campaign "spring".
pub fn assign(server: &Server, vin: &str, targets: Value) -> (StatusCode, String) {
    server.admin(
        Method::POST,
        &format!("/vehicles/{vin}/assignments"),
        Some(&server.write),
        Some(json!({ "campaign": "spring", "targets": targets })),
    )
}

/// `target_name` for ECU `serial`, as the admin names it.
pub fn named(serial: &str, target_name: &str) -> Value {
    json!({ "ecu_serial": serial, "target_name": target_name })
}

/// The vehicle's current Director targets, fetched and verified as its primary would.
pub fn director_targets(server: &Server, car: &Car) -> ferry_core::metadata::Targets {
    verified_targets(&server.root, |file| {
        let (status, body) = server.metadata(&car.vin, file, &car.token);
        assert_eq!(status, StatusCode::OK, "{file}");
        body
    })
}

/// The vehicle's assignments as the status route lists them.
pub fn assignments(server: &Server, vin: &str) -> Vec<Value> {
    server.status(vin)["assignments"]
        .as_array()
        .unwrap()
        .clone()
}
