//! `ferry relay import --config relay.toml DIR`: load what `ferry admin relay pack` wrote
//! (Director metadata of the site's vehicles, Image repository metadata and targets) into the
//! relay's cache, for a site whose relay never reaches the backend.

use crate::error::Result;
use ferry_core::Clock;
use ferry_relay::db::Db;
use ferry_relay::RelayConfig;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  # on the backend side:
  ferry admin relay pack --relay yard-7 --vin VIN-1 --vin VIN-2 \\
      --image-repo https://images.example --out /media/usb/yard-7-pack
  # at the site (the relay may be running):
  ferry relay import --config /etc/ferry/relay.toml /media/usb/yard-7-pack

Every file is checked against pack.json (length, SHA-256) before it is loaded, and a pack made
for another relay is refused. Nothing in it is trusted: vehicles verify every signature and
hash as if the backend served it, and refuse expired metadata by name.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The directory `ferry admin relay pack` wrote.
    dir: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = RelayConfig::load(&args.config)?;
    let db = Db::open(&config.cache_dir)?;
    let name = config.upstream.name.clone();
    let now = ferry_core::SystemClock.now().timestamp_millis();
    let done = ferry_relay::pack::import(
        &db,
        &config.cache_dir.join("mirror"),
        &config.cache_dir.join(ferry_relay::pack::BUNDLES_DIR),
        config.cache_max,
        &name,
        &args.dir,
        now,
    )?;
    tracing::info!(relay = %name, dir = %args.dir.display(), ?done, "pack imported");
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "relay": name, "dir": args.dir, "imported": done })
        );
    } else {
        println!(
            "relay {name}: {} vehicle(s), {} Director file(s) and {} Image repository file(s) ({} bytes) loaded from {}",
            done.vehicles,
            done.director_files,
            done.image_repo_files,
            done.bytes,
            args.dir.display()
        );
        for name in &done.bundles {
            println!(
                "offline-update bundle {name}: {} (`ferry-primary offline --bundle DIR`, or copy it to a stick)",
                config
                    .cache_dir
                    .join(ferry_relay::pack::BUNDLES_DIR)
                    .join(name)
                    .display()
            );
        }
    }
    Ok(())
}
