//! Who may call the device and admin APIs.
//!
//! On a mutual-TLS connection the device is its certificate ([`ClientIdentity`]) and nothing
//! else: a bearer token there is ignored, so a leaked token is worthless without the vehicle's
//! key. A registered gateway relay's certificate is no vehicle's: it speaks for vehicles as
//! the relay ([`super::relayed`]), and the admin API refuses it ([`refuse_relay_certificates`]). Over plain HTTP (loopback only) the device presents a bearer token:
//!
//! Device tokens handed out by the admin API have the form `<vin>.<secret>`: the VIN lets the
//! Director tell a token of another vehicle (403) from a wrong or missing one (401) without
//! trying every vehicle's token. Only `<secret>` is checked against the store
//! ([`crate::Store::verify_device_token`]). A bare secret (issued by other tools straight from
//! the store) is accepted too, checked against the VIN in the path.

use super::errors::ApiError;
use super::{blocking, AppState, ClientIdentity};
use crate::error::Error;
use crate::model::Scope;
use crate::store::{Prefetch, View};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// The bearer token of the request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The device token as handed out by the admin API.
pub fn device_token(vin: &str, secret: &str) -> String {
    format!("{vin}.{secret}")
}

/// Split a device token into the VIN it claims, if any, and the secret to check.
fn split_device_token(token: &str) -> (Option<&str>, &str) {
    match token.rsplit_once('.') {
        Some((vin, secret))
            if !vin.is_empty()
                && secret.len() == 64
                && secret.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            (Some(vin), secret)
        }
        _ => (None, token),
    }
}

/// Who is calling the device API, as read from the request: its TLS client identity, or else
/// its bearer token. Taken in the async handler, checked by [`DeviceCaller::check`] inside the
/// handler's one blocking hop and the same store [`View`] as the request's own reads, so a
/// device request costs one trip to the blocking pool and one read transaction.
#[derive(Debug, Clone)]
pub struct DeviceCaller {
    identity: Option<ClientIdentity>,
    token: Option<String>,
    /// A registered gateway relay speaking for the vehicle (see [`super::relayed`]).
    relay: Option<super::relayed::RelayClaim>,
}

/// The caller, read straight from the request's parts (the `HeaderMap` extractor would copy
/// every header of every device request to read one).
impl<S: Send + Sync> FromRequestParts<S> for DeviceCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(DeviceCaller::of(
            parts.extensions.get::<ClientIdentity>(),
            &parts.headers,
        ))
    }
}

impl DeviceCaller {
    pub fn of(identity: Option<&ClientIdentity>, headers: &HeaderMap) -> DeviceCaller {
        // A relay's certificate: the relay speaks for the vehicle, never is it.
        if let Some(cert) = identity.and_then(|i| i.relay.as_ref()) {
            return DeviceCaller {
                identity: None,
                token: None,
                relay: Some(super::relayed::RelayClaim::of_certificate(cert, headers)),
            };
        }
        let token = if identity.is_some() {
            None
        } else {
            bearer(headers)
        };
        // A relay token in the bearer slot: the relay speaks for the vehicle.
        let relay = token
            .as_deref()
            .and_then(|t| super::relayed::RelayClaim::of(t, headers));
        DeviceCaller {
            identity: identity.cloned(),
            token: if relay.is_some() { None } else { token },
            relay,
        }
    }

    /// The registered relay this request claims to come through, if any (checked by
    /// [`DeviceCaller::check`]).
    pub fn relay(&self) -> Option<&super::relayed::RelayClaim> {
        self.relay.as_ref()
    }

    /// The read [`DeviceCaller::check`] starts with for vehicle `vin`, to announce with
    /// [`View::prefetch`]; `None` for a relay (its check reads the relay's token).
    pub fn first_read<'a>(&self, vin: &'a str) -> Option<Prefetch<'a>> {
        match (&self.identity, &self.relay) {
            (Some(_), _) => Some(Prefetch::EcuKeys(vin)),
            (None, Some(_)) => None,
            (None, None) => Some(Prefetch::DeviceToken(vin)),
        }
    }

    /// Allow a device request for vehicle `vin` (blocking: store reads). With a TLS client
    /// identity: a path VIN that is not registered → 404; a certificate that does not name
    /// `vin` → 403. Otherwise by token: none → 401; a path VIN that is not registered → 404; a
    /// valid token of another vehicle → 403; any other token → 401.
    pub fn check(&self, store: &dyn View, vin: &str) -> Result<(), ApiError> {
        match (&self.identity, &self.relay) {
            (Some(identity), _) => device_certificate(store, identity, vin),
            (None, Some(relay)) => relay.check(store, vin),
            (None, None) => device_token_check(store, self.token.as_deref(), vin),
        }
    }
}

fn device_certificate(
    store: &dyn View,
    identity: &ClientIdentity,
    vin: &str,
) -> Result<(), ApiError> {
    // Registered first, as with tokens: an unknown VIN is a 404 whoever asks.
    if store.ecu_keys(vin)?.is_none() {
        return Err(Error::UnknownVehicle {
            vin: vin.to_owned(),
        }
        .into());
    }
    if identity.names(vin) {
        return Ok(());
    }
    tracing::warn!(path_vin = %vin, cert_vins = ?identity.vins, "device certificate of another vehicle refused");
    let holder = match identity.vins.as_slice() {
        [] => "names no vehicle".to_owned(),
        [one] => format!("is vehicle {one}'s"),
        many => format!("is for vehicles {}", many.join(", ")),
    };
    Err(ApiError::forbidden(format!(
        "device certificate check failed: the certificate {holder}; expected the certificate of vehicle {vin}, named in the path"
    )))
}

pub(super) fn device_token_check(
    store: &dyn View,
    token: Option<&str>,
    vin: &str,
) -> Result<(), ApiError> {
    let token = token.ok_or_else(|| {
        ApiError::unauthorized(
            "device token check failed: no bearer token; expected `Authorization: Bearer <device token>`",
        )
    })?;
    let (claimed, secret) = split_device_token(token);
    // An unknown VIN is a 404 (VINs are not secrets; nothing of a vehicle is served).
    let unknown = || -> Result<bool, ApiError> { Ok(store.ecu_keys(vin)?.is_none()) };
    let unknown_vehicle = || -> ApiError {
        Error::UnknownVehicle {
            vin: vin.to_owned(),
        }
        .into()
    };
    if let Some(claimed) = claimed.filter(|c| *c != vin) {
        if unknown()? {
            return Err(unknown_vehicle());
        }
        if store.verify_device_token(claimed, secret)? {
            tracing::warn!(path_vin = %vin, token_vin = %claimed, "device token of another vehicle refused");
            return Err(ApiError::forbidden(format!(
                "device token check failed: the token is not vehicle {vin}'s; expected the token of the vehicle named in the path"
            )));
        }
        return Err(ApiError::unauthorized(
            "device token check failed: the token is not valid; expected the vehicle's current device token",
        ));
    }
    if store.verify_device_token(vin, secret)? {
        Ok(())
    } else if unknown()? {
        Err(unknown_vehicle())
    } else {
        Err(ApiError::unauthorized(
            "device token check failed: the token is not valid; expected the vehicle's current device token",
        ))
    }
}

/// Allow the request only with an unrevoked admin token of at least `needed` scope.
pub async fn admin(state: &AppState, headers: &HeaderMap, needed: Scope) -> Result<(), ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized(
            "admin token check failed: no bearer token; expected `Authorization: Bearer <admin token>`",
        )
    })?;
    let store = state.store.clone();
    let scope = blocking(move || Ok(store.check_admin_token(&token)?)).await?;
    match scope {
        None => Err(ApiError::unauthorized(
            "admin token check failed: unknown or revoked token; expected a valid admin token",
        )),
        Some(scope) if !scope.allows(needed) => Err(ApiError::forbidden(format!(
            "admin token check failed: the token has scope {scope}; expected scope {needed}"
        ))),
        Some(_) => Ok(()),
    }
}

/// Middleware of the admin API: a connection whose client certificate is a gateway relay's is
/// refused whatever bearer token it sends. A relay speaks for vehicles, never as an operator;
/// a relay host holding a leaked admin token gains nothing through its own certificate.
pub async fn refuse_relay_certificates(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(relay) = request
        .extensions()
        .get::<ClientIdentity>()
        .and_then(|i| i.relay.as_ref())
    {
        tracing::warn!(relay = %relay.name, path = %request.uri().path(), "a relay certificate on the admin API refused");
        return ApiError::forbidden(format!(
            "admin certificate check failed: the client certificate is relay {}'s, and a relay speaks for vehicles only; expected an operator certificate (`ferry director issue-cert --operator`)",
            relay.name
        ))
        .into_response();
    }
    next.run(request).await
}
