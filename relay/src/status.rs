//! `GET /relay/status` (what `ferry relay status` prints): cache size and hit rate, queue
//! length and oldest entry, upstream reachability, last sync.

use crate::error::Result;
use crate::mirror::blocking;
use crate::server::Relay;
use crate::upstream::Reachability;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub cache_bytes: u64,
    pub cache_files: u64,
    pub cache_max: u64,
    pub hits: i64,
    pub misses: i64,
    /// hits / (hits + misses); none before the first request.
    pub hit_rate: Option<f64>,
    pub queue_length: u64,
    pub queue_oldest: Option<String>,
    pub forwarded: i64,
    pub refused: i64,
    pub upstream: serde_json::Value,
    pub last_sync: Option<String>,
}

pub fn status(relay: &Relay) -> Result<Status> {
    let (cache_bytes, cache_files) = relay.db.cache_size()?;
    let hits = relay.db.counter("hits")?;
    let misses = relay.db.counter("misses")?;
    let (queue_length, queue_oldest) = relay.db.queue_stats()?;
    let total = hits + misses;
    let reach: Reachability = relay.upstream.reachability();
    Ok(Status {
        cache_bytes,
        cache_files,
        cache_max: relay.config.cache_max,
        hits,
        misses,
        hit_rate: (total > 0).then(|| hits as f64 / total as f64),
        queue_length,
        queue_oldest,
        forwarded: relay.db.counter("forwarded")?,
        refused: relay.db.counter("refused")?,
        upstream: serde_json::to_value(reach).unwrap_or_default(),
        last_sync: relay.db.state("last_sync")?,
    })
}

pub async fn handler(State(relay): State<Arc<Relay>>) -> Response {
    match blocking(&relay, status).await {
        Ok(s) => axum::Json(s).into_response(),
        Err(e) => crate::mirror::text(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("relay: {e}\n"),
        ),
    }
}
