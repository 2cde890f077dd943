//! `ferry director init`: a Director directory with fresh online keys and a director.toml.
//! The root is not made here: it is signed offline (`ferry director root init`).

use crate::error::{io_at, Error, Result};
use ferry_director::config::CONFIG_FILE;
use ferry_keys::{KeyKind, PrivateKey};
use std::path::{Path, PathBuf};

const EXAMPLE: &str = "Example:
  ferry director init ./director --listen 127.0.0.1:8000
  # then, on the offline host, with the public halves of the online keys:
  ferry director root init --root-key root.key --passphrase-file root.pass \\
      --targets-key ./director/keys/targets.pem --snapshot-key ./director/keys/snapshot.pem \\
      --timestamp-key ./director/keys/timestamp.pem --out ./director/roots/1.root.json";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Directory to create (must not hold a director.toml yet).
    dir: PathBuf,
    /// Address of the device and admin API (loopback unless TLS is configured).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: std::net::SocketAddr,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Create the Director directory `dir` listening on `listen`: online keys (0600), data/,
/// roots/ and director.toml. Returns the config's path and each online key's id.
pub fn create(
    dir: &Path,
    listen: std::net::SocketAddr,
) -> Result<(PathBuf, serde_json::Map<String, serde_json::Value>)> {
    let config = dir.join(CONFIG_FILE);
    if config.exists() {
        return Err(Error::Usage(format!(
            "{} exists; expected a directory without a Director",
            config.display()
        )));
    }
    let keys = dir.join("keys");
    // keys/ and data/ (director.db, its WAL) are the Director's alone, whatever the umask.
    for d in [&keys, &dir.join("data")] {
        ferry_keys::fs::create_private_dir(d).map_err(io_at(d))?;
    }
    let roots = dir.join("roots");
    std::fs::create_dir_all(&roots).map_err(io_at(&roots))?;
    let mut key_ids = serde_json::Map::new();
    for role in ["targets", "snapshot", "timestamp", "offline-update"] {
        let key = PrivateKey::generate(KeyKind::Ed25519)?;
        // Online keys: the server has no one to type a passphrase; the file mode guards them.
        key.write_file(keys.join(format!("{role}.pem")), None)?;
        key_ids.insert(role.into(), key.key_id().to_string().into());
    }
    let text = format!(
        "# Ferry Director (see `ferry director serve --help`).\n\
         listen = \"{}\"\n\
         data_dir = \"data\"\n\
         roots_dir = \"roots\"\n\n\
         [keys]\n\
         targets = [\"keys/targets.pem\"]\n\
         snapshot = [\"keys/snapshot.pem\"]\n\
         timestamp = [\"keys/timestamp.pem\"]\n\
         # PURE-2 offline-update bundles (used once a root names this key: `ferry director\n\
         # root init --offline-update-key keys/offline-update.pem`)\n\
         offline_update = [\"keys/offline-update.pem\"]\n\n\
         [lifetimes]\n\
         targets = \"30d\"\n\
         snapshot = \"7d\"\n\
         timestamp = \"1d\"\n\
         refresh_before = \"6h\"\n\
         refresh_interval = \"1m\"\n\n\
         [http]\n\
         # a request head, and an idle kept-alive connection, past this is closed\n\
         header_read_timeout = \"30s\"\n\
         # a request body must arrive within this plus 1 s per min_body_rate bytes (408 past it)\n\
         body_timeout = \"30s\"\n\
         min_body_rate = 1024\n\
         # one more connection from one client address is closed at accept (vehicles behind\n\
         # a carrier-grade NAT share an address: raise it for a large fleet)\n\
         connections_per_address = 256\n",
        listen
    );
    std::fs::write(&config, text).map_err(io_at(&config))?;
    Ok((config, key_ids))
}

pub fn run(args: Args) -> Result<()> {
    let (config, key_ids) = create(&args.dir, args.listen)?;
    if args.json {
        let out = serde_json::json!({"config": config, "keys": key_ids});
        println!("{out}");
    } else {
        println!("created {}", config.display());
        for (role, id) in &key_ids {
            println!("  {role} key {}", id.as_str().unwrap_or_default());
        }
        println!("next: sign roots/1.root.json offline with `ferry director root init`");
    }
    Ok(())
}
