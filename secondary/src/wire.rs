//! The answers of the Secondary's HTTP API that only the API has (`GET /info` and `GET /status`
//! answer with [`crate::Info`] and [`crate::Status`], `POST /install` with
//! [`crate::Installed`]). The Secondary serializes them and the Primary deserializes the same
//! types, so the two sides cannot drift apart.

use ferry_core::metadata::Hashes;
use serde::{Deserialize, Serialize};

/// `PUT /metadata`: the verified target this ECU expects next, with its signed length and
/// hashes; `target: null` when there is nothing for it to install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataAccepted {
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<Hashes>,
}

/// `PUT /image`: the image of `target` is received and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReceived {
    pub target: String,
    pub ready: bool,
}
