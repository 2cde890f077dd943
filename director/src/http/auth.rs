//! Who may call the device and admin APIs.
//!
//! On a mutual-TLS connection the device is its certificate ([`ClientIdentity`]) and nothing
//! else: a bearer token there is ignored, so a leaked token is worthless without the vehicle's
//! key. Over plain HTTP (loopback only) the device presents a bearer token:
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

/// Allow a device request for vehicle `vin`. With a TLS client `identity`: a path VIN that is
/// not registered → 404; a certificate that does not name `vin` → 403. Otherwise by token:
/// none → 401; a path VIN that is not registered → 404; a valid token of another vehicle →
/// 403; any other token → 401.
pub async fn device(
    state: &AppState,
    identity: Option<&ClientIdentity>,
    headers: &HeaderMap,
    vin: &str,
) -> Result<(), ApiError> {
    match identity {
        Some(identity) => device_certificate(state, identity, vin).await,
        None => device_token_check(state, headers, vin).await,
    }
}

async fn device_certificate(
    state: &AppState,
    identity: &ClientIdentity,
    vin: &str,
) -> Result<(), ApiError> {
    let store = state.store.clone();
    let path_vin = vin.to_owned();
    // Registered first, as with tokens: an unknown VIN is a 404 whoever asks.
    blocking(move || match store.get_vehicle(&path_vin)? {
        Some(_) => Ok(()),
        None => Err(Error::UnknownVehicle { vin: path_vin }.into()),
    })
    .await?;
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

async fn device_token_check(
    state: &AppState,
    headers: &HeaderMap,
    vin: &str,
) -> Result<(), ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized(
            "device token check failed: no bearer token; expected `Authorization: Bearer <device token>`",
        )
    })?;
    let store = state.store.clone();
    let vin = vin.to_owned();
    blocking(move || {
        let (claimed, secret) = split_device_token(&token);
        // An unknown VIN is a 404 (VINs are not secrets; nothing of a vehicle is served).
        let unknown = || -> Result<bool, ApiError> { Ok(store.get_vehicle(&vin)?.is_none()) };
        if let Some(claimed) = claimed.filter(|c| *c != vin) {
            if unknown()? {
                return Err(Error::UnknownVehicle { vin }.into());
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
        if store.verify_device_token(&vin, secret)? {
            Ok(())
        } else if unknown()? {
            Err(Error::UnknownVehicle { vin }.into())
        } else {
            Err(ApiError::unauthorized(
                "device token check failed: the token is not valid; expected the vehicle's current device token",
            ))
        }
    })
    .await
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
