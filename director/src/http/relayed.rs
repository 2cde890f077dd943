//! Requests a registered gateway relay makes for a vehicle (issue #20).
//!
//! The relay authenticates with its own token, `Authorization: Bearer ferry-relay:NAME:SECRET`
//! (issued by `ferry admin relay add NAME`), or on the mutual-TLS listener with its own
//! certificate (CN `relay:NAME`, issued by the fleet CA with `ferry director issue-cert
//! --relay NAME` and registered by its SHA-256 with `ferry admin relay add NAME --cert FILE`;
//! see [`super::tls::ClientIdentity`]), and names the vehicle it speaks for:
//! - `Ferry-Device-Authorization: Bearer <device token>`: the vehicle's own token, forwarded
//!   while the relay passes requests through; checked here exactly as a direct request's;
//! - otherwise `Ferry-Relayed-Vin: VIN`: the relay vouches for a vehicle it authenticated itself
//!   (a manifest it queued while the uplink was down); it must be the VIN in the path.
//!
//! A relay token is no admin token (the admin API never looks at the `relays` table): a relay
//! speaks for vehicles only. Manifests carry their own ECU signatures and nonces, so a relay
//! can delay or drop them but not forge or replay one.
//!
//! `Ferry-Relay-Received-At` (RFC 3339) on a manifest is when the relay received it; the
//! Director judges the report times against it instead of its own clock (a manifest queued for
//! a day is not a day skewed), within [`MAX_RELAY_DELAY`] and never in the future.

use super::auth::device_token_check;
use super::errors::ApiError;
use crate::error::Error;
use crate::store::View;
use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};

/// The prefix of a relay token in the bearer slot (`:` never appears in a VIN or a device token).
pub const RELAY_TOKEN_PREFIX: &str = "ferry-relay:";
/// The vehicle the relay speaks for, when it does not forward the vehicle's own token.
pub const RELAYED_VIN: &str = "ferry-relayed-vin";
/// The vehicle's own credential, forwarded by the relay.
pub const DEVICE_AUTHORIZATION: &str = "ferry-device-authorization";
/// When the relay received a manifest it forwards late (RFC 3339).
pub const RECEIVED_AT: &str = "ferry-relay-received-at";

/// The longest a relay may have held a manifest: older receipt times are refused (a relay's
/// queue is drained when its uplink returns; a month is a long voyage or a long lay-up).
pub const MAX_RELAY_DELAY: Duration = Duration::days(31);

/// The relay's credential as presented (its name, and its token's secret or its certificate)
/// and what it says of the vehicle.
#[derive(Clone)]
pub struct RelayClaim {
    pub name: String,
    credential: Credential,
    vin: Option<String>,
    device_token: Option<String>,
    received_at: Option<String>,
}

impl std::fmt::Debug for RelayClaim {
    // Never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClaim")
            .field("name", &self.name)
            .field("vin", &self.vin)
            .field("received_at", &self.received_at)
            .finish_non_exhaustive()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// The token `ferry admin relay add` hands out.
pub fn relay_token(name: &str, secret: &str) -> String {
    format!("{RELAY_TOKEN_PREFIX}{name}:{secret}")
}

/// How the relay proved who it is.
#[derive(Clone)]
enum Credential {
    /// The secret of its token (bearer).
    Token(String),
    /// The SHA-256 of the client certificate of its TLS connection.
    Certificate([u8; 32]),
}

impl RelayClaim {
    /// The claim a request makes if its bearer token is a relay token.
    pub fn of(token: &str, headers: &HeaderMap) -> Option<RelayClaim> {
        let rest = token.strip_prefix(RELAY_TOKEN_PREFIX)?;
        let (name, secret) = rest.rsplit_once(':')?;
        Some(Self::with(
            name,
            Credential::Token(secret.to_owned()),
            headers,
        ))
    }

    /// The claim of a request on a TLS connection whose client certificate names a relay.
    pub fn of_certificate(cert: &super::tls::RelayCertificate, headers: &HeaderMap) -> RelayClaim {
        Self::with(&cert.name, Credential::Certificate(cert.sha256), headers)
    }

    fn with(name: &str, credential: Credential, headers: &HeaderMap) -> RelayClaim {
        let device_token = headers
            .get(DEVICE_AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned());
        RelayClaim {
            name: name.to_owned(),
            credential,
            vin: header(headers, RELAYED_VIN),
            device_token,
            received_at: header(headers, RECEIVED_AT),
        }
    }

    /// Allow the relay to speak for `vin` (blocking: store reads). Relay token not valid →
    /// 401; relay certificate not registered for an unrevoked relay of its name → 403 (the
    /// TLS layer already knows the client, so this is no missing credential); the vehicle's
    /// forwarded token checked as a direct request's; else the vouched VIN must be `vin`
    /// (403) and registered (404).
    pub fn check(&self, store: &dyn View, vin: &str) -> Result<(), ApiError> {
        match &self.credential {
            Credential::Token(secret) => {
                if !store.verify_relay_token(&self.name, secret)? {
                    tracing::warn!(relay = %self.name, "relay token refused");
                    return Err(ApiError::unauthorized(format!(
                        "relay token check failed: no registered, unrevoked relay {} with this token; expected the token `ferry admin relay add` issued",
                        self.name
                    )));
                }
            }
            Credential::Certificate(sha256) => {
                if !store.verify_relay_cert(&self.name, sha256)? {
                    tracing::warn!(relay = %self.name, sha256 = %hex::encode(sha256), "relay certificate refused");
                    return Err(ApiError::forbidden(format!(
                        "relay certificate check failed: the client certificate (SHA-256 {}) is not registered for an unrevoked relay {}; expected the certificate `ferry admin relay add {} --cert FILE` registered",
                        hex::encode(sha256),
                        self.name,
                        self.name
                    )));
                }
            }
        }
        if let Some(token) = &self.device_token {
            return device_token_check(store, Some(token), vin);
        }
        match self.vin.as_deref() {
            None => Err(ApiError::bad_request(format!(
                "relay check failed: relay {} names no vehicle; expected a {RELAYED_VIN} or {DEVICE_AUTHORIZATION} header",
                self.name
            ))),
            Some(claimed) if claimed != vin => Err(ApiError::forbidden(format!(
                "relay check failed: relay {} speaks for vehicle {claimed}; expected the vehicle named in the path, {vin}",
                self.name
            ))),
            Some(_) => {
                if store.ecu_keys(vin)?.is_none() {
                    return Err(Error::UnknownVehicle {
                        vin: vin.to_owned(),
                    }
                    .into());
                }
                Ok(())
            }
        }
    }

    /// The time to judge a late manifest's report times by: the relay's receipt time if it
    /// gave one, checked against `now` (not after `now` + `max_skew`, not more than
    /// [`MAX_RELAY_DELAY`] before it); `now` otherwise.
    pub fn judged_at(
        &self,
        now: DateTime<Utc>,
        max_skew: Duration,
    ) -> Result<DateTime<Utc>, ApiError> {
        match &self.received_at {
            Some(text) => judge_receipt_time(&self.name, text, now, max_skew),
            None => Ok(now),
        }
    }
}

/// Relay `name`'s receipt time `text` (RFC 3339), checked against `now`: not after `now` +
/// `max_skew`, not more than [`MAX_RELAY_DELAY`] before it.
pub fn judge_receipt_time(
    name: &str,
    text: &str,
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<DateTime<Utc>, ApiError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            ApiError::bad_request(format!(
                "relay receipt time check failed: {text:?}: {e}; expected an RFC 3339 time"
            ))
        })?
        .with_timezone(&Utc);
    if at > now + max_skew {
        return Err(ApiError::bad_request(format!(
            "relay receipt time check failed: relay {name} says it received the manifest at {at}, after the Director's clock {now} (+{}s); expected a past time",
            max_skew.num_seconds()
        )));
    }
    if now - at > MAX_RELAY_DELAY {
        return Err(ApiError::bad_request(format!(
            "relay receipt time check failed: relay {name} received the manifest at {at}, more than {} days before the Director's clock {now}; expected a manifest held at most that long",
            MAX_RELAY_DELAY.num_days()
        )));
    }
    Ok(at)
}
