//! `ferry relay status --config relay.toml`: what the running relay says of itself.

use crate::error::{Error, Result};
use ferry_relay::status::Status;
use ferry_relay::RelayConfig;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry relay status --config /etc/ferry/relay.toml
  ferry relay status --config /etc/ferry/relay.toml --json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The relay's address, if not the config's `listen` (e.g. it listens on port 0).
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = RelayConfig::load(&args.config)?;
    let addr = match args.addr {
        Some(a) => a,
        None if config.listen.ip().is_unspecified() => {
            format!("127.0.0.1:{}", config.listen.port())
        }
        None => config.listen.to_string(),
    };
    let url = format!("http://{addr}/relay/status");
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
    let bytes = http
        .get(&url)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .map_err(|e| {
            Error::Check(format!(
                "relay status check failed: {url}: {}; expected a running `ferry relay serve`",
                ferry_http::with_causes(&e)
            ))
        })?;
    let reply: Status = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Check(format!(
            "relay status check failed: {url}: {e}; expected the relay's status JSON"
        ))
    })?;
    if args.json {
        let text = serde_json::to_string_pretty(&reply)
            .map_err(|e| Error::Usage(format!("cannot print JSON: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    let rate = reply
        .hit_rate
        .map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0));
    println!(
        "cache: {} bytes in {} files (max {}), hit rate {rate} ({} hits, {} misses)",
        reply.cache_bytes, reply.cache_files, reply.cache_max, reply.hits, reply.misses
    );
    println!(
        "queue: {} manifests{}; forwarded {}, refused by the Director {}",
        reply.queue_length,
        reply
            .queue_oldest
            .as_deref()
            .map(|t| format!(", oldest received {t}"))
            .unwrap_or_default(),
        reply.forwarded,
        reply.refused
    );
    let reachable = match reply.upstream["reachable"].as_bool() {
        Some(true) => "reachable".to_owned(),
        Some(false) => format!(
            "UNREACHABLE ({})",
            reply.upstream["last_error"].as_str().unwrap_or("?")
        ),
        None => "not tried yet".to_owned(),
    };
    println!("upstream: {reachable}");
    println!(
        "last sync: {}",
        reply.last_sync.as_deref().unwrap_or("never")
    );
    Ok(())
}
