//! `ferry relay prefetch --config relay.toml --target NAME...`: warm the running relay's
//! cache ahead of a campaign. The targets are looked up in the Image repository's metadata as
//! the relay serves it (top-level targets, then delegated roles), then fetched through the
//! relay, which caches them. Nothing here is trusted: vehicles verify what they get.

use crate::error::{Error, Result};
use ferry_core::layout::{consistent_target_path, quote_path};
use ferry_core::TargetName;
use reqwest::blocking::Client;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry relay prefetch --config /etc/ferry/relay.toml --target apps/demo-3.tar --target tcu/fw-3.bin";

/// Delegated roles searched at most for one target (hashed bins may have thousands).
const MAX_ROLES: usize = 4096;

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The relay's address, if not the config's `listen`.
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    #[arg(long = "target", value_name = "NAME", required = true)]
    targets: Vec<String>,
    #[arg(long)]
    json: bool,
}

fn get_json(http: &Client, url: &str) -> Result<Option<Value>> {
    let r = http
        .get(url)
        .send()
        .map_err(|e| Error::Check(format!("prefetch: {url}: {}", ferry_http::with_causes(&e))))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !r.status().is_success() {
        return Err(Error::Check(format!(
            "prefetch: {url} answered {}; expected 200",
            r.status()
        )));
    }
    let bytes = r
        .bytes()
        .map_err(|e| Error::Check(format!("prefetch: {url}: {}", ferry_http::with_causes(&e))))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Check(format!("prefetch: {url}: not JSON metadata: {e}")))
}

/// `ROLE.json` at the version `snapshot` lists, under consistent snapshots.
fn role(
    http: &Client,
    base: &str,
    snapshot: &Value,
    role: &str,
    consistent: bool,
) -> Result<Option<Value>> {
    let file = format!("{role}.json");
    let version = snapshot["signed"]["meta"][&file]["version"].as_u64();
    let url = match (consistent, version) {
        (true, Some(v)) => format!("{base}/metadata/{v}.{}", quote_path(&file)),
        _ => format!("{base}/metadata/{}", quote_path(&file)),
    };
    get_json(http, &url)
}

pub fn run(args: Args) -> Result<()> {
    let config = ferry_relay::RelayConfig::load(&args.config)?;
    let addr = match &args.addr {
        Some(a) => a.clone(),
        None if config.listen.ip().is_unspecified() => {
            format!("127.0.0.1:{}", config.listen.port())
        }
        None => config.listen.to_string(),
    };
    let base = format!("http://{addr}");
    let http = Client::builder()
        .timeout(std::time::Duration::from_secs(3600))
        .build()
        .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
    let missing = |what: &str| {
        Error::Check(format!(
            "prefetch: the relay serves no {what}; expected the Image repository's metadata"
        ))
    };
    let timestamp = get_json(&http, &format!("{base}/metadata/timestamp.json"))?
        .ok_or_else(|| missing("timestamp.json"))?;
    let sv = timestamp["signed"]["meta"]["snapshot.json"]["version"].as_u64();
    let (snapshot, consistent) = match sv {
        Some(v) => match get_json(&http, &format!("{base}/metadata/{v}.snapshot.json"))? {
            Some(s) => (s, true),
            None => (
                get_json(&http, &format!("{base}/metadata/snapshot.json"))?
                    .ok_or_else(|| missing("snapshot"))?,
                false,
            ),
        },
        None => return Err(missing("snapshot version in timestamp.json")),
    };
    let mut results = Vec::new();
    for name in &args.targets {
        let target = TargetName::new(name)?;
        let found = find(&http, &base, &snapshot, consistent, name)?
            .ok_or_else(|| Error::Check(format!("prefetch: target {name} is in no targets role the relay serves; expected a published target")))?;
        let hash = found["hashes"]
            .as_object()
            .and_then(|h| h.values().next())
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Check(format!("prefetch: target {name} lists no hashes")))?;
        let path = if consistent {
            consistent_target_path(&target, hash)
        } else {
            name.clone()
        };
        let url = format!("{base}/targets/{}", quote_path(&path));
        let mut r = http.get(&url).send().map_err(|e| {
            Error::Check(format!("prefetch: {url}: {}", ferry_http::with_causes(&e)))
        })?;
        if !r.status().is_success() {
            return Err(Error::Check(format!(
                "prefetch: {url} answered {}; expected 200",
                r.status()
            )));
        }
        let bytes = std::io::copy(&mut r, &mut std::io::sink())
            .map_err(|e| Error::Check(format!("prefetch: {url}: {e}")))?;
        if !args.json {
            println!("{name}: cached ({bytes} bytes)");
        }
        results.push(serde_json::json!({"target": name, "bytes": bytes}));
    }
    if args.json {
        println!("{}", serde_json::json!({ "prefetched": results }));
    }
    Ok(())
}

/// The target entry of `name`: in top-level targets, else breadth-first in delegated roles.
fn find(
    http: &Client,
    base: &str,
    snapshot: &Value,
    consistent: bool,
    name: &str,
) -> Result<Option<Value>> {
    let mut queue = VecDeque::from(["targets".to_owned()]);
    let mut seen = 0;
    while let Some(r) = queue.pop_front() {
        seen += 1;
        if seen > MAX_ROLES {
            break;
        }
        let Some(meta) = role(http, base, snapshot, &r, consistent)? else {
            continue;
        };
        if let Some(t) = meta["signed"]["targets"].get(name) {
            return Ok(Some(t.clone()));
        }
        for d in meta["signed"]["delegations"]["roles"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(n) = d["name"].as_str() {
                queue.push_back(n.to_owned());
            }
        }
    }
    Ok(None)
}
