//! `ferry admin bundle`: PURE-2 offline-update bundles. The Director signs which image each
//! hardwareId installs (`create`), this command puts that with the Image repository's
//! metadata and the images on a stick in the PURE-2 layout; `list`, `show`, `revoke`.

use super::client::{print_json, table, AdminClient};
use crate::error::{Error, Result};
use std::path::PathBuf;

mod layout;

const EXAMPLE: &str = "Example:
  ferry admin bundle create workshop-2026-12 --target ivi=apps/demo-3.tar --target tcu=tcu/fw-3.bin \\
      --expires 30d --image-repo http://images.example:8080 --image-root img-1.root.json \\
      --out /media/usb/ferry
  ferry admin bundle create workshop-2026-12 ... --out workshop.tar    # one file instead
  ferry admin bundle list
  ferry admin bundle revoke workshop-2026-12   # vehicles that go online refuse it from then on";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Have the Director sign a bundle, then write it with its images in the PURE-2 layout.
    Create(CreateArgs),
    /// Every bundle, its version, expiry and whether it is revoked.
    List(ListArgs),
    /// One bundle: its images per hardwareId, versions and expiry.
    Show(ShowArgs),
    /// Revoke a bundle: the next offline-update snapshot no longer lists it.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct CreateArgs {
    /// Bundle name (letters, digits, '-', '_', '.'); a new version replaces an older one.
    name: String,
    /// HARDWARE_ID=TARGET (repeatable): the image every ECU of that hardwareId installs.
    #[arg(long = "target", value_name = "HARDWARE_ID=TARGET", required = true)]
    targets: Vec<String>,
    /// How long the bundle is valid.
    #[arg(long, default_value = "30d")]
    expires: String,
    /// The Image repository's base URL (metadata/ and targets/ under it).
    #[arg(long, value_name = "URL")]
    image_repo: String,
    /// A root of the Image repository you trust (the roots before it are fetched too).
    #[arg(long, value_name = "FILE")]
    image_root: PathBuf,
    /// A new or empty directory, or FILE.tar.
    #[arg(long, value_name = "DIR|FILE.tar")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    name: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    name: String,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &AdminClient, cmd: Command) -> Result<()> {
    match cmd {
        Command::Create(a) => create(client, a),
        Command::List(a) => list(client, a),
        Command::Show(a) => show(client, a),
        Command::Revoke(a) => {
            let reply = client.post(
                &format!("/bundles/{}/revoke", a.name),
                &serde_json::json!({}),
            )?;
            if a.json {
                return print_json(&reply);
            }
            println!(
                "revoked {}; offline-update snapshot v{} no longer lists it",
                a.name, reply["snapshot_version"]
            );
            Ok(())
        }
    }
}

fn create(client: &AdminClient, a: CreateArgs) -> Result<()> {
    let mut targets = serde_json::Map::new();
    for pair in &a.targets {
        let (hw, target) = pair.split_once('=').ok_or_else(|| {
            Error::Usage(format!("--target {pair:?}: expected HARDWARE_ID=TARGET"))
        })?;
        if targets.insert(hw.to_owned(), target.into()).is_some() {
            return Err(Error::Usage(format!(
                "--target: hardwareId {hw:?} is given twice; a bundle installs one image per hardwareId"
            )));
        }
    }
    layout::check_out(&a.out)?;
    let mut names: Vec<String> = targets
        .values()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    // The images first: nothing is signed on the Director for a bundle whose images fail.
    let staged = layout::stage_images(&a.out, &a.image_repo, &a.image_root, &names)?;
    client.post(
        "/bundles",
        &serde_json::json!({ "name": a.name, "targets": targets, "expires": a.expires }),
    )?;
    let signed = client.get(&format!("/bundles/{}", a.name))?;
    let written = layout::finish(staged, &signed, &a.name, &a.out)?;
    if a.json {
        return print_json(&serde_json::json!({
            "name": a.name,
            "version": signed["bundle"]["version"],
            "out": a.out,
            "files": written.files,
            "bytes": written.bytes,
        }));
    }
    println!(
        "bundle {} v{} ({} file(s), {}) written to {}",
        a.name,
        signed["bundle"]["version"],
        written.files,
        human_bytes(written.bytes),
        a.out.display()
    );
    Ok(())
}

fn list(client: &AdminClient, a: ListArgs) -> Result<()> {
    let reply = client.get("/bundles")?;
    if a.json {
        return print_json(&reply);
    }
    let mut t = table(&["name", "version", "expires", "created", "revoked"]);
    for b in reply["bundles"].as_array().into_iter().flatten() {
        let s = |k: &str| b[k].as_str().unwrap_or("-").to_owned();
        t.add_row([
            s("name"),
            b["version"].to_string(),
            s("expires"),
            s("created_at"),
            s("revoked_at"),
        ]);
    }
    println!("{t}");
    Ok(())
}

fn show(client: &AdminClient, a: ShowArgs) -> Result<()> {
    let reply = client.get(&format!("/bundles/{}", a.name))?;
    if a.json {
        return print_json(&reply);
    }
    let targets: serde_json::Value = reply["targets"]
        .as_str()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    println!(
        "bundle {} v{}, expires {}{}",
        a.name,
        reply["bundle"]["version"],
        reply["bundle"]["expires"].as_str().unwrap_or("-"),
        reply["bundle"]["revoked_at"]
            .as_str()
            .map(|r| format!(", REVOKED at {r}"))
            .unwrap_or_default()
    );
    let mut t = table(&["image", "length", "hardwareIds"]);
    for (name, file) in targets["signed"]["targets"]
        .as_object()
        .into_iter()
        .flatten()
    {
        t.add_row([
            name.clone(),
            file["length"].to_string(),
            file["custom"]["hardwareIds"].to_string(),
        ]);
    }
    println!("{t}");
    println!(
        "offline-update snapshot v{}; director roots 1..{}",
        reply["snapshot_version"],
        reply["roots"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}
