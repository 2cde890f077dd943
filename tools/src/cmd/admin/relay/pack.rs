//! `ferry admin relay pack --relay NAME --vin VIN... --image-repo URL --out DIR`: what a site
//! whose relay never reaches the backend needs, written to a directory for carrying in
//! (`ferry relay import` loads it; format in `ferry_relay::pack`):
//! - per vehicle, its Director metadata (every root, timestamp, snapshot, targets, the
//!   offline-update snapshot if any) and its device token hash, from the admin API (which
//!   puts the pending assignments it names in flight, as a vehicle's own fetch would);
//! - the Image repository's current metadata (every root, timestamp, snapshot and each role it
//!   lists) and every target a packed vehicle is assigned, checked against the Director's
//!   length and SHA-256 before it goes in;
//! - each offline-update bundle given with `--bundle DIR` (as `ferry admin bundle create --out
//!   DIR` wrote it), every file checked against the bundle's own `bundle.json` on the way in.

use super::super::client::AdminClient;
use crate::error::{Error, Result};
use ferry_relay::pack::{PackBundle, PackFile, PackIndex, PackVehicle, PackWriter, FORMAT};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The largest metadata file taken (the relay's own limit on Director metadata).
const MAX_METADATA: u64 = ferry_relay::device::MAX_METADATA_BYTES;

const EXAMPLE: &str = "Example:
  ferry admin relay pack --relay yard-7 --image-repo https://images.example --out DIR
      # the vehicles the Director last saw through yard-7; add others with --vin
  ferry admin relay pack --relay yard-7 --vin VIN-1 --vin VIN-2 \\
      --image-repo https://images.example --out /media/usb/yard-7-pack --json
  ferry admin relay pack ... --bundle workshop-2026-12     # a dir `ferry admin bundle create` wrote
  # at the site:
  ferry relay import --config /etc/ferry/relay.toml /media/usb/yard-7-pack

The pending assignments of each vehicle are put in flight, as the vehicle's own fetch would.
The pack holds each vehicle's device token hash (not the token): treat it as you would the
relay's cache. Its metadata expires as it would online: pack again before it does.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct PackArgs {
    /// The registered relay the pack is for (`ferry relay import` refuses any other's).
    #[arg(long, value_name = "NAME")]
    relay: String,
    /// A vehicle of the relay's site (repeat for each), beside those the Director last saw
    /// through the relay (its relayed manifests), which are always packed.
    #[arg(long = "vin", value_name = "VIN")]
    vins: Vec<String>,
    /// The Image repository's base URL (as in the vehicles' [image_repo] url upstream).
    #[arg(long, value_name = "URL", env = "FERRY_IMAGE_REPO_URL")]
    image_repo: String,
    /// An offline-update bundle directory (`ferry admin bundle create --out DIR`) to carry
    /// too (repeat for each); `ferry relay import` places it in cache_dir/bundles/NAME/.
    #[arg(long = "bundle", value_name = "DIR")]
    bundles: Vec<PathBuf>,
    /// A new or empty directory; complete once its pack.json is written (last).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

fn plain(s: &str, what: &str) -> Result<()> {
    if ferry_relay::pack::plain(s) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{what} {s:?}: expected letters, digits, '-', '_' or '.'"
        )))
    }
}

/// One target a packed vehicle is assigned: its length and hashes in the Director's metadata.
#[derive(Debug, Clone)]
struct Wanted {
    length: u64,
    hashes: BTreeMap<String, String>,
}

pub fn run(client: &AdminClient, mut a: PackArgs) -> Result<()> {
    plain(&a.relay, "--relay")?;
    for vin in &a.vins {
        plain(vin, "--vin")?;
    }
    // The site: the vehicles the Director last saw through this relay, and any named.
    let seen = client.get(&format!("/relays/{}/vehicles", a.relay))?;
    for vin in seen["vehicles"].as_array().into_iter().flatten() {
        let vin = vin.as_str().unwrap_or_default().to_owned();
        plain(&vin, "the Director's VIN")?;
        if !a.vins.contains(&vin) {
            a.vins.push(vin);
        }
    }
    if a.vins.is_empty() {
        return Err(Error::Usage(format!(
            "relay pack: no vehicles: the Director saw none through relay {} and no --vin was given; expected at least one vehicle",
            a.relay
        )));
    }
    let writer = PackWriter::create(&a.out)?;
    let mut vehicles = Vec::new();
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    for vin in &a.vins {
        let reply = client.post(
            &format!("/relays/{}/vehicles/{vin}/pack", a.relay),
            &serde_json::json!({}),
        )?;
        let mut files = Vec::new();
        let listed = reply["files"].as_object().cloned().unwrap_or_default();
        for (name, hex_bytes) in &listed {
            plain(name, "the Director's file name")?;
            let bytes = hex::decode(hex_bytes.as_str().unwrap_or_default()).map_err(|e| {
                Error::Check(format!(
                    "relay pack: the Director's {name} of {vin} is not hex ({e}); expected hex of the file"
                ))
            })?;
            if name == "targets.json" {
                targets_of(&bytes, &mut wanted)?;
            }
            files.push(writer.write(
                &format!("director/{vin}/{name}"),
                &mut bytes.as_slice(),
                MAX_METADATA,
            )?);
        }
        vehicles.push(PackVehicle {
            vin: vin.clone(),
            device_token_sha256: reply["device_token_sha256"].as_str().map(str::to_owned),
            files,
        });
    }
    let repo = Repo::new(&a.image_repo)?;
    let (mut image_repo, consistent) = repo.metadata(&writer)?;
    for (name, w) in &wanted {
        image_repo.push(repo.target(&writer, name, w, consistent)?);
    }
    let bundles = a
        .bundles
        .iter()
        .map(|dir| bundle(&writer, dir))
        .collect::<Result<Vec<_>>>()?;
    let index = PackIndex {
        format: FORMAT.into(),
        relay: a.relay.clone(),
        created_at: chrono::Utc::now().to_rfc3339(),
        vehicles,
        image_repo,
        bundles,
    };
    writer.finish(&index)?;
    let bytes: u64 = index.image_repo.iter().map(|f| f.length).sum();
    if a.json {
        return super::super::client::print_json(&serde_json::json!({
            "relay": a.relay, "out": a.out, "vehicles": a.vins,
            "targets": wanted.keys().collect::<Vec<_>>(),
            "image_repo_files": index.image_repo.len(), "image_repo_bytes": bytes,
            "bundles": index.bundles.iter().map(|b| &b.name).collect::<Vec<_>>(),
        }));
    }
    println!(
        "pack for relay {} written to {}: {} vehicle(s), {} target(s), {} Image repository file(s) ({bytes} bytes); carry it to the site and run `ferry relay import --config relay.toml {}`",
        a.relay,
        a.out.display(),
        a.vins.len(),
        wanted.len(),
        index.image_repo.len(),
        a.out.display()
    );
    Ok(())
}

/// Bundle directory `dir` into the pack as `bundles/NAME/…`: its `bundle.json` names it and
/// gives each file's length and SHA-256; each file is checked against it as it is copied
/// (vehicles verify the signed metadata anyway: this catches a damaged copy before it
/// travels), and `bundle.json` goes in too.
fn bundle(w: &PackWriter, dir: &std::path::Path) -> Result<PackBundle> {
    let index_path = dir.join("bundle.json");
    let text = std::fs::read(&index_path).map_err(crate::error::io_at(&index_path))?;
    let index: Value = serde_json::from_slice(&text).map_err(|e| {
        Error::Check(format!(
            "relay pack: {} is not JSON ({e}); expected the bundle.json `ferry admin bundle create --out DIR` wrote",
            index_path.display()
        ))
    })?;
    let name = index["name"].as_str().unwrap_or_default().to_owned();
    plain(&name, "the bundle's name")?;
    let listed = index["files"].as_object().ok_or_else(|| {
        Error::Check(format!(
            "relay pack: {} lists no files; expected a `files` object",
            index_path.display()
        ))
    })?;
    let mut files = Vec::new();
    for (rel, want) in listed {
        if !ferry_relay::pack::safe_relative(rel) || rel == "bundle.json" {
            return Err(Error::Check(format!(
                "relay pack: {} lists {rel:?}; expected a path inside the bundle",
                index_path.display()
            )));
        }
        let length = want["length"].as_u64().unwrap_or(u64::MAX);
        let src = dir.join(rel);
        let mut from = std::fs::File::open(&src).map_err(crate::error::io_at(&src))?;
        // One byte over is read, so a longer file fails the length check below, by name.
        let f = w.write(
            &format!("bundles/{name}/{rel}"),
            &mut from,
            length.saturating_add(1),
        )?;
        if f.length != length || Some(f.sha256.as_str()) != want["sha256"].as_str() {
            return Err(Error::Check(format!(
                "relay pack: {} is {} bytes with sha256 {}; expected {want} as {} says",
                src.display(),
                f.length,
                f.sha256,
                index_path.display()
            )));
        }
        files.push(f);
    }
    files.push(w.write(
        &format!("bundles/{name}/bundle.json"),
        &mut text.as_slice(),
        u64::MAX,
    )?);
    Ok(PackBundle { name, files })
}

/// The targets a Director targets file names, with their lengths and hashes.
fn targets_of(bytes: &[u8], wanted: &mut BTreeMap<String, Wanted>) -> Result<()> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::Check(format!(
            "relay pack: the Director's targets.json is not JSON ({e}); expected signed metadata"
        ))
    })?;
    for (name, t) in doc["signed"]["targets"].as_object().into_iter().flatten() {
        let hashes = t["hashes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        let length = t["length"].as_u64().ok_or_else(|| {
            Error::Check(format!(
                "relay pack: target {name} has no length in the Director's targets.json; expected one"
            ))
        })?;
        wanted.insert(name.clone(), Wanted { length, hashes });
    }
    Ok(())
}

/// The Image repository, read as a vehicle reads it.
struct Repo {
    base: String,
    http: reqwest::blocking::Client,
}

impl Repo {
    fn new(base: &str) -> Result<Repo> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "--image-repo {base:?}: expected an http:// or https:// URL"
            )));
        }
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Targets may be large (minutes over a slow link); a stalled transfer still ends.
            .timeout(Duration::from_secs(3600))
            .build()
            .map_err(|e| Error::Usage(format!("HTTP client: {e}")))?;
        Ok(Repo {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    fn get(&self, path: &str) -> Result<reqwest::blocking::Response> {
        let url = format!("{}/{}", self.base, ferry_core::layout::quote_path(path));
        let response = self.http.get(&url).send().map_err(|e| {
            Error::Check(format!(
                "relay pack: {url}: {}; expected the Image repository to answer",
                ferry_http::with_causes(&e)
            ))
        })?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Error::Check(format!(
                "relay pack: {url} answered {}; expected 200",
                response.status()
            )));
        }
        Ok(response)
    }

    /// `metadata/NAME` into the pack; its bytes.
    fn meta(&self, w: &PackWriter, name: &str, out: &mut Vec<PackFile>) -> Result<Vec<u8>> {
        let mut r = self.get(&format!("metadata/{name}"))?;
        let f = w.write(&format!("image-repo/metadata/{name}"), &mut r, MAX_METADATA)?;
        let bytes = std::fs::read(w_path(w, &f)).map_err(crate::error::io_at(&f.path))?;
        out.push(f);
        Ok(bytes)
    }

    /// Every root, the timestamp, the snapshot it names and every role the snapshot lists;
    /// and whether the repository uses consistent snapshots (where targets are).
    fn metadata(&self, w: &PackWriter) -> Result<(Vec<PackFile>, bool)> {
        let mut out = Vec::new();
        let root = json(&self.meta(w, "root.json", &mut out)?, "root.json")?;
        let version = root["signed"]["version"].as_u64().unwrap_or(1);
        let consistent = root["signed"]["consistent_snapshot"].as_bool() == Some(true);
        for n in 1..=version {
            self.meta(w, &format!("{n}.root.json"), &mut out)?;
        }
        let timestamp = json(&self.meta(w, "timestamp.json", &mut out)?, "timestamp.json")?;
        let snapshot_version = timestamp["signed"]["meta"]["snapshot.json"]["version"].as_u64();
        let versioned = |file: &str, v: Option<u64>| match (consistent, v) {
            (true, Some(v)) => format!("{v}.{file}"),
            _ => file.to_owned(),
        };
        let snapshot_name = versioned("snapshot.json", snapshot_version);
        let snapshot = json(&self.meta(w, &snapshot_name, &mut out)?, &snapshot_name)?;
        for (file, m) in snapshot["signed"]["meta"].as_object().into_iter().flatten() {
            self.meta(w, &versioned(file, m["version"].as_u64()), &mut out)?;
        }
        Ok((out, consistent))
    }

    /// Target `name` (where a vehicle fetches it), checked against the Director's length and
    /// SHA-256.
    fn target(
        &self,
        w: &PackWriter,
        name: &str,
        want: &Wanted,
        consistent: bool,
    ) -> Result<PackFile> {
        let target = ferry_core::TargetName::new(name)?;
        let path = match (consistent, want.hashes.values().next()) {
            (true, Some(hash)) => ferry_core::layout::consistent_target_path(&target, hash),
            _ => name.to_owned(),
        };
        let mut r = self.get(&format!("targets/{path}"))?;
        let f = w.write(&format!("image-repo/targets/{path}"), &mut r, want.length)?;
        if f.length != want.length {
            return Err(Error::Check(format!(
                "relay pack: target {name} is {} bytes; expected {} as the Director's targets.json says",
                f.length, want.length
            )));
        }
        if let Some(sha) = want.hashes.get("sha256") {
            if *sha != f.sha256 {
                return Err(Error::Check(format!(
                    "relay pack: target {name} has sha256 {}; expected {sha} as the Director's targets.json says",
                    f.sha256
                )));
            }
        }
        Ok(f)
    }
}

fn w_path(w: &PackWriter, f: &PackFile) -> PathBuf {
    w.dir().join(&f.path)
}

fn json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Check(format!(
            "relay pack: the Image repository's {what} is not JSON ({e}); expected signed metadata"
        ))
    })
}
