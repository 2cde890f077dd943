//! A small client of the Director's admin API: bearer token, JSON in and out, and errors
//! that carry the Director's own reason.

use crate::error::{io_at, Error, Result};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;

/// Where the Director is and how to authenticate, shared by every `ferry admin` command.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// The Director's base URL.
    #[arg(
        long,
        env = "FERRY_DIRECTOR_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    url: String,
    /// File holding an admin token (`ferry director token create`); or set FERRY_ADMIN_TOKEN.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for an https URL.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Operator certificate for a mutual-TLS Director (`ferry director issue-cert --operator`).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
}

#[derive(Debug)]
pub struct AdminClient {
    base: String,
    token: String,
    http: Client,
}

impl AdminClient {
    pub fn connect(c: &Connection) -> Result<AdminClient> {
        let token = match (&c.token_file, std::env::var("FERRY_ADMIN_TOKEN")) {
            (Some(f), _) => std::fs::read_to_string(f).map_err(io_at(f))?,
            (None, Ok(t)) => t,
            (None, Err(_)) => {
                return Err(Error::Usage(
                    "no admin token: give --token-file FILE or set FERRY_ADMIN_TOKEN".into(),
                ))
            }
        };
        let mut builder = Client::builder().timeout(std::time::Duration::from_secs(60));
        if let Some(ca) = &c.ca_cert {
            let pem = std::fs::read(ca).map_err(io_at(ca))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                Error::Usage(format!("{}: not a PEM certificate: {e}", ca.display()))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if let (Some(cert), Some(key)) = (&c.client_cert, &c.client_key) {
            // The key bytes are wiped once reqwest has its copy.
            let mut pem = zeroize::Zeroizing::new(std::fs::read(cert).map_err(io_at(cert))?);
            pem.extend_from_slice(&zeroize::Zeroizing::new(
                std::fs::read(key).map_err(io_at(key))?,
            ));
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::Usage(format!(
                    "{} / {}: not a PEM certificate and key: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(AdminClient {
            base: format!("{}/api/v1/admin", c.url.trim_end_matches('/')),
            token: token.trim().to_owned(),
            http,
        })
    }

    /// A client of a plain-HTTP (loopback) Director at `url` with the admin token `token`.
    pub fn plain(url: &str, token: &str) -> Result<AdminClient> {
        let http = Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(AdminClient {
            base: format!("{}/api/v1/admin", url.trim_end_matches('/')),
            token: token.trim().to_owned(),
            http,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path), path)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::Usage(format!("cannot encode the request: {e}")))?;
        let request = self
            .request(Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        self.send(request, path)
    }

    /// POST `body` as it is (a signed document that must arrive byte for byte).
    pub fn post_bytes(&self, path: &str, body: Vec<u8>) -> Result<Value> {
        let request = self
            .request(Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(request, path)
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::DELETE, path), path)
    }

    fn send(&self, request: RequestBuilder, path: &str) -> Result<Value> {
        let response = request.send().map_err(|e| Error::Admin {
            path: path.to_owned(),
            status: None,
            reason: format!("request failed: {}", ferry_http::with_causes(&e)),
        })?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if !status.is_success() {
            // The Director answers a refusal with a plain-text reason naming the check.
            let reason = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            return Err(Error::Admin {
                path: path.to_owned(),
                status: Some(status.as_u16()),
                reason,
            });
        }
        serde_json::from_str(&text).map_err(|e| Error::Admin {
            path: path.to_owned(),
            status: Some(status.as_u16()),
            reason: format!("the reply is not JSON: {e}"),
        })
    }
}

/// Print `value` as pretty JSON.
pub fn print_json(value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Usage(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// A table in the style every `ferry` listing uses.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

/// Deserialize an API reply into a model type, naming what did not fit.
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Admin {
        path: what.to_owned(),
        status: None,
        reason: format!("unexpected reply shape: {e}"),
    })
}
