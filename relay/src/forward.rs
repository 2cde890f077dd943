//! Forwarding the queue: the oldest queued manifest goes to the Director with the relay's
//! credential (token or certificate), the VIN it speaks for and the time the relay received it; it leaves the queue only
//! once the Director has answered for it, so a crash between sending and dequeuing sends it
//! again, and the Director's nonce check (409) turns that second copy into a no-op: each
//! manifest is accepted exactly once, in arrival order.
//!
//! - 2xx: accepted. 409: its nonce was accepted before (our own earlier send). Other 4xx
//!   except 401/403/429: the Director refused it for good (it records the refusal); it leaves
//!   the queue, counted as refused.
//! - 401/403 (the relay's token is wrong or revoked), 429 (rate), 5xx, no answer: it stays,
//!   and is tried again after `retry_every` (or the Director's Retry-After).

use crate::db::Queued;
use crate::mirror::{blocking, read_bounded};
use crate::server::Relay;
use std::sync::Arc;
use std::time::Duration;

/// What the Director said of one forwarded manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Off the queue, counted under this name.
    Done(&'static str),
    /// Keep it; try again after this long.
    Later(Duration),
}

/// Forward until the queue is empty or the uplink fails; then sleep until woken (a new
/// manifest) or `retry_every`. Runs for the relay's life.
pub async fn run(relay: Arc<Relay>) {
    loop {
        let wait = match drain(&relay).await {
            Ok(()) => relay.config.retry_every,
            Err(wait) => wait,
        };
        tokio::select! {
            _ = relay.forwarder_woken() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Forward queued manifests one by one, oldest first; Err(wait) when one must wait.
pub async fn drain(relay: &Arc<Relay>) -> Result<(), Duration> {
    loop {
        let head = blocking(relay, |r| r.db.queue_head()).await;
        let entry = match head {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "reading the queue failed");
                return Err(relay.config.retry_every);
            }
        };
        match send(relay, &entry).await {
            Sent::Done(counter) => {
                let id = entry.id;
                let now = relay.clock.now().to_rfc3339();
                let done = blocking(relay, move |r| {
                    r.db.dequeue(id, counter)?;
                    r.db.set_state("last_sync", &now)
                })
                .await;
                if let Err(e) = done {
                    tracing::error!(error = %e, "dequeuing a forwarded manifest failed");
                    return Err(relay.config.retry_every);
                }
                tracing::info!(vin = %entry.vin, id, outcome = counter, "queued manifest forwarded");
            }
            Sent::Later(wait) => return Err(wait),
        }
    }
}

async fn send(relay: &Arc<Relay>, entry: &Queued) -> Sent {
    let url = format!(
        "{}/api/v1/vehicles/{}/manifest",
        relay.config.upstream.director, entry.vin
    );
    let retry = relay.config.retry_every;
    let sent = relay
        .upstream
        .director(reqwest::Method::PUT, &url)
        .header("ferry-relayed-vin", &entry.vin)
        .header("ferry-relay-received-at", &entry.received_at)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(entry.body.clone())
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            relay
                .upstream
                .saw(Err(ferry_http::with_causes(&e)), relay.clock.now());
            return Sent::Later(retry);
        }
    };
    let status = response.status();
    if crate::upstream::is_outage(status) {
        relay.upstream.saw(
            Err(format!("upstream answered {status}")),
            relay.clock.now(),
        );
        return Sent::Later(retry);
    }
    relay.upstream.saw(Ok(()), relay.clock.now());
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let reason = String::from_utf8_lossy(&read_bounded(response, 4096).await.unwrap_or_default())
        .into_owned();
    match status.as_u16() {
        200..=299 => Sent::Done("forwarded"),
        409 => {
            tracing::info!(vin = %entry.vin, id = entry.id, "the Director had this manifest already (sent before a restart)");
            Sent::Done("forwarded")
        }
        401 | 403 => {
            tracing::error!(vin = %entry.vin, %status, %reason, "the Director refused the relay's credential; the queue waits");
            Sent::Later(retry)
        }
        429 => Sent::Later(retry_after.unwrap_or(retry)),
        400..=499 => {
            tracing::warn!(vin = %entry.vin, id = entry.id, %status, %reason, "the Director refused a queued manifest");
            Sent::Done("refused")
        }
        _ => Sent::Later(retry),
    }
}
