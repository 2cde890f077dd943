//! The ECUs of the vehicle as the cycle sees them: one interface for the primary's own ECU
//! (in-process, [`crate::own_ecu`]) and for each Secondary daemon (HTTP, [`SecondaryClient`]).
//! The order of calls is the Secondary's: metadata, image, install, report.

use crate::config::VehicleTls;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use ferry_core::manifest::EcuVersionReport;
use ferry_core::metadata::Signed;
use ferry_secondary::image::tee::{Aborted, Chunk, Tap};
use ferry_secondary::wire::MetadataAccepted;
use ferry_secondary::Installed;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What an ECU says about itself (`GET /status`, or the own ECU's state): the Secondary's
/// own type, read as it writes it.
pub type EcuStatus = ferry_secondary::Status;

/// One ECU of the vehicle. `Send`: an image streams to all its ECUs at once, one thread each.
pub trait EcuLink: std::fmt::Debug + Send {
    fn serial(&self) -> &str;
    /// The ECU's hardwareId, as it states it.
    fn hardware_id(&mut self) -> Result<String>;
    fn status(&mut self) -> Result<EcuStatus>;
    /// Send a metadata bundle; the ECU verifies it and answers the target it will install.
    fn send_metadata(&mut self, bundle: &[u8], now: DateTime<Utc>) -> Result<Option<String>>;
    /// Stream the image of the pending target (`length` bytes, as signed) from `image`, as
    /// it downloads. The ECU checks every byte itself; the Primary checks them too.
    fn send_image(&mut self, image: Tap, length: u64) -> Result<()>;
    fn install(&mut self, now: DateTime<Utc>) -> Result<()>;
    fn report(&mut self, nonce: &str, now: DateTime<Utc>) -> Result<Signed<EcuVersionReport>>;
}

/// The in-vehicle link's TLS material, read once: the only CA trusted for the Secondaries'
/// certificates, and this Primary's client certificate.
#[derive(Debug, Clone)]
struct LinkTls {
    ca: reqwest::Certificate,
    identity: reqwest::Identity,
}

impl LinkTls {
    fn read(tls: &VehicleTls) -> Result<LinkTls> {
        let read = |p: &std::path::Path| std::fs::read(p).map_err(crate::error::io_at(p));
        ferry_keys::check_owner_only(&tls.key)
            .map_err(|e| Error::Config(format!("[vehicle_tls] key: {e}")))?;
        let ca = reqwest::Certificate::from_pem(&read(&tls.ca_cert)?)
            .map_err(|e| Error::Config(format!("[vehicle_tls] ca_cert: {e}")))?;
        let mut pem = read(&tls.cert)?;
        pem.extend(read(&tls.key)?);
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| Error::Config(format!("[vehicle_tls] cert/key: {e}")))?;
        Ok(LinkTls { ca, identity })
    }

    fn blocking(
        &self,
        builder: reqwest::blocking::ClientBuilder,
    ) -> reqwest::blocking::ClientBuilder {
        builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .https_only(true)
    }

    fn streaming(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .https_only(true)
    }
}

/// A Secondary daemon over HTTP (see ferry-secondary's `http` module for the routes).
#[derive(Debug)]
pub struct SecondaryClient {
    serial: String,
    url: String,
    http: reqwest::blocking::Client,
    /// Mutual TLS on the link (`[vehicle_tls]`), for the image stream's own client too.
    tls: Option<LinkTls>,
    /// Images stream at no less than this rate, so a stuck Secondary cannot hold the cycle.
    min_bytes_per_sec: u64,
    grace: Duration,
    /// See [`crate::reboot_wait`].
    pub reboot_wait: Duration,
}

impl SecondaryClient {
    /// A client of the Secondary `serial` at `url`; over mutual TLS when `tls` is given.
    pub fn new(
        serial: &str,
        url: &str,
        timeout: Duration,
        min_bytes_per_sec: u64,
        tls: Option<&VehicleTls>,
    ) -> Result<Self> {
        let tls = tls.map(LinkTls::read).transpose()?;
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout);
        if let Some(tls) = &tls {
            builder = tls.blocking(builder);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client for ECU {serial}: {e}")))?;
        Ok(SecondaryClient {
            serial: serial.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
            http,
            tls,
            min_bytes_per_sec: min_bytes_per_sec.max(1),
            grace: timeout,
            reboot_wait: crate::reboot_wait::DEFAULT,
        })
    }

    fn transport(&self, step: &'static str, e: impl std::fmt::Display) -> Error {
        Error::SecondaryTransport {
            serial: self.serial.clone(),
            step,
            reason: e.to_string(),
        }
    }

    /// Send `request`; a non-2xx answer becomes [`Error::Secondary`] with the ECU's text,
    /// which names the check that failed.
    fn call(
        &self,
        step: &'static str,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<serde_json::Value> {
        let response = request
            .send()
            .map_err(|e| self.transport(step, ferry_http::with_causes(&e)))?;
        let status = response.status();
        let body = response.bytes().map_err(|e| self.transport(step, e))?;
        if !status.is_success() {
            return Err(Error::Secondary {
                serial: self.serial.clone(),
                step,
                status: status.as_u16(),
                reason: String::from_utf8_lossy(&body).trim().to_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| self.transport(step, format!("bad JSON: {e}")))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        step: &'static str,
        value: serde_json::Value,
    ) -> Result<T> {
        serde_json::from_value(value).map_err(|e| self.transport(step, format!("bad answer: {e}")))
    }
}

impl EcuLink for SecondaryClient {
    fn serial(&self) -> &str {
        &self.serial
    }

    fn hardware_id(&mut self) -> Result<String> {
        let url = format!("{}/info", self.url);
        let value = self.call("info", self.http.get(&url))?;
        let info: ferry_secondary::Info = self.parse("info", value)?;
        if info.serial != self.serial {
            // A config pointing at the wrong daemon must not install another ECU's image.
            return Err(Error::SecondaryIdentity {
                url,
                expected: self.serial.clone(),
                found: info.serial,
            });
        }
        Ok(info.hardware_id)
    }

    fn status(&mut self) -> Result<EcuStatus> {
        let value = self.call("status", self.http.get(format!("{}/status", self.url)))?;
        self.parse("status", value)
    }

    fn send_metadata(&mut self, bundle: &[u8], _now: DateTime<Utc>) -> Result<Option<String>> {
        let request = self
            .http
            .put(format!("{}/metadata", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bundle.to_vec());
        let value = self.call("metadata", request)?;
        let answer: MetadataAccepted = self.parse("metadata", value)?;
        Ok(answer.target)
    }

    fn send_image(&mut self, image: Tap, length: u64) -> Result<()> {
        let budget = self.grace + Duration::from_secs(length / self.min_bytes_per_sec);
        let url = format!("{}/image", self.url);
        // The body is sent as the download delivers it, in the tee's 1 MiB chunks, without a
        // copy: the blocking client would re-buffer a reader 8 KiB at a time, which costs more
        // CPU than hashing. A runtime of its own for this one request, on this ECU's thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| self.transport("image", e))?;
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        if let Some(tls) = &self.tls {
            builder = tls.streaming(builder);
        }
        let answer = runtime.block_on(async {
            let client = builder.build()?;
            let response = client
                .put(&url)
                .timeout(budget)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, length)
                .body(reqwest::Body::wrap(TapBody {
                    tap: image,
                    left: length,
                }))
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) =
            answer.map_err(|e| self.transport("image", ferry_http::with_causes(&e)))?;
        if !status.is_success() {
            return Err(Error::Secondary {
                serial: self.serial.clone(),
                step: "image",
                status: status.as_u16(),
                reason: String::from_utf8_lossy(&body).trim().to_owned(),
            });
        }
        Ok(())
    }

    fn install(&mut self, _now: DateTime<Utc>) -> Result<()> {
        let value = self.call("install", self.http.post(format!("{}/install", self.url)))?;
        match self.parse("install", value)? {
            Installed::RebootPending {
                target,
                reboot_pending: true,
            } => {
                let budget = self.reboot_wait;
                crate::reboot_wait::wait(self, &target, budget)
            }
            // The outcome comes as after a reboot: /status once nothing is in flight.
            Installed::ConfirmPending {
                target,
                confirm_pending: true,
            } => {
                let budget = self.reboot_wait;
                crate::reboot_wait::wait(self, &target, budget)
            }
            Installed::RebootPending { .. }
            | Installed::ConfirmPending { .. }
            | Installed::Done(_) => Ok(()),
        }
    }

    fn report(&mut self, nonce: &str, _now: DateTime<Utc>) -> Result<Signed<EcuVersionReport>> {
        let request = self
            .http
            .get(format!("{}/report", self.url))
            .query(&[("nonce", nonce)]);
        let value = self.call("report", request)?;
        self.parse("report", value)
    }
}

/// An image upload's body: the chunks of a [`Tap`] as they arrive, each sent as it is.
#[derive(Debug)]
struct TapBody {
    tap: Tap,
    /// Bytes still to come, so the request carries a Content-Length.
    left: u64,
}

/// A chunk lent to the HTTP client until it is written.
struct Shared(Arc<Chunk>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl http_body::Body for TapBody {
    type Data = bytes::Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<bytes::Bytes>, Aborted>>> {
        let this = self.get_mut();
        match this.tap.poll_chunk(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(chunk))) => {
                this.left = this.left.saturating_sub(chunk.bytes().len() as u64);
                let data = bytes::Bytes::from_owner(Shared(chunk));
                Poll::Ready(Some(Ok(http_body::Frame::data(data))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            // The download failed: the request fails too, so the ECU never sees a whole image.
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}
