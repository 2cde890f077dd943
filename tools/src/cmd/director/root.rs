//! `ferry director root`: the director root, made and rotated on the offline host with
//! `ferry key` files, then imported by the online Director.

use crate::error::{io_at, Error, Result};
use crate::keyfile;
use ferry_core::metadata::Expires;
use ferry_core::{Clock, SystemClock};
use ferry_director::root::{build_root, read_root_file, sign_root, spec_of, RoleSpec, RootSpec};
use ferry_keys::Signer;
use std::path::{Path, PathBuf};

const EXAMPLE: &str = "Example:
  # Offline: version 1, two of three root keys must sign later rotations.
  ferry director root init --root-key r1.key --root-key r2.key --root-key r3.key \\
      --root-threshold 2 --passphrase-file root.pass \\
      --targets-key targets.pub.pem --snapshot-key snapshot.pub.pem \\
      --timestamp-key timestamp.pub.pem --out 1.root.json
  # Offline: version 2 with a new timestamp key, signed by the old and new root keys.
  ferry director root rotate --previous 1.root.json --sign-key r1.key --sign-key r2.key \\
      --passphrase-file root.pass --timestamp-key timestamp2.pub.pem --out 2.root.json
  # Or as a ceremony, without the root keys on one host:
  ferry director root propose --config director/director.toml --add-key root=r4.pub \
      --remove-key root=KEYID --threshold root=2 --out p.json
  ferry proposal sign p.json --key r1.key --out r1.sig   # on each holder's host
  ferry proposal merge p.json r1.sig r2.sig r4.sig --out 2.root.json
  # Online: check the chain and place it for the next start of the Director.
  ferry director root import --config director/director.toml 2.root.json";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Make and sign root version 1.
    Init(InitArgs),
    /// Make and sign the next root version, cross-signed by the previous root's keys.
    Rotate(RotateArgs),
    /// Write a proposal for the next root, for its key holders to sign (`ferry proposal`).
    Propose(super::root_propose::ProposeArgs),
    /// Check a root against the Director's chain and put it in roots_dir (imported and
    /// applied, with every vehicle re-signed, at the Director's next start).
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct OnlineKeyArgs {
    /// Targets key file (public or private PEM, or a certificate); repeatable.
    #[arg(long = "targets-key", value_name = "FILE")]
    targets: Vec<PathBuf>,
    /// Snapshot key file; repeatable.
    #[arg(long = "snapshot-key", value_name = "FILE")]
    snapshot: Vec<PathBuf>,
    /// Timestamp key file; repeatable.
    #[arg(long = "timestamp-key", value_name = "FILE")]
    timestamp: Vec<PathBuf>,
    /// PURE-2 offline-update key file (repeatable): adds the offline-update-snapshot and
    /// offline-update-targets roles, which sign offline-update bundles (`ferry admin bundle`).
    #[arg(long = "offline-update-key", value_name = "FILE")]
    offline_update: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Root key (repeatable; every one signs): a private key file or a pkcs11: URI. With
    /// --proposal: each holder's public key (SPKI PEM, TUF key JSON, certificate or URI).
    #[arg(long = "root-key", value_name = "KEYSOURCE", required = true)]
    root_keys: Vec<PathBuf>,
    /// Write root v1 as a ceremony proposal instead of signing it here: no root private key
    /// on this host; the holders sign with `ferry proposal sign`, `ferry proposal merge`
    /// writes 1.root.json.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    proposal: Option<PathBuf>,
    /// How many root keys must sign a rotation (default: all of them).
    #[arg(long)]
    root_threshold: Option<u32>,
    /// Passphrase of encrypted key files (the same for all).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    online: OnlineKeyArgs,
    /// How long the root is valid.
    #[arg(long, default_value = "1year", value_parser = humantime::parse_duration)]
    expires: std::time::Duration,
    /// File to write (normally roots/1.root.json); never overwritten.
    #[arg(long, value_name = "FILE", required_unless_present = "proposal")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The current root file.
    #[arg(long, value_name = "FILE")]
    previous: PathBuf,
    /// A private key of the previous root; repeatable (at least its threshold).
    #[arg(long = "sign-key", value_name = "FILE", required = true)]
    sign_keys: Vec<PathBuf>,
    /// New root private keys (replace the root role's keys; each signs too). Omit to keep
    /// the previous root keys.
    #[arg(long = "root-key", value_name = "FILE")]
    root_keys: Vec<PathBuf>,
    #[arg(long)]
    root_threshold: Option<u32>,
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Online keys to replace (a role not named keeps its keys).
    #[command(flatten)]
    online: OnlineKeyArgs,
    #[arg(long, default_value = "1year", value_parser = humantime::parse_duration)]
    expires: std::time::Duration,
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Root files, in version order.
    files: Vec<PathBuf>,
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Init(a) => init(a),
        Command::Rotate(a) => rotate(a),
        Command::Import(a) => import(a),
        Command::Propose(a) => super::root_propose::propose(a),
    }
}

fn role(files: &[PathBuf], passphrase: Option<&Path>, what: &str) -> Result<RoleSpec> {
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "--{what}-key: expected at least one key file"
        )));
    }
    let keys = files
        .iter()
        .map(|f| keyfile::public_key(f, passphrase))
        .collect::<Result<Vec<_>>>()?;
    Ok(RoleSpec { threshold: 1, keys })
}

/// Add the PURE-2 roles signed by `files` (none given: nothing added).
fn offline_roles(
    root: &mut ferry_core::metadata::Root,
    files: &[PathBuf],
    passphrase: Option<&Path>,
) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let spec = role(files, passphrase, "offline-update")?;
    Ok(ferry_director::root::add_offline_roles(root, &spec)?)
}

/// Signing keys as every command takes them: key files or pkcs11: URIs.
fn private_keys(
    files: &[PathBuf],
    passphrase: Option<&Path>,
) -> Result<Vec<std::sync::Arc<dyn Signer>>> {
    files
        .iter()
        .map(|f| keyfile::signer(&f.to_string_lossy(), passphrase))
        .collect()
}

fn expires(d: std::time::Duration) -> Result<Expires> {
    let d = chrono::Duration::from_std(d).map_err(|e| Error::Usage(format!("--expires: {e}")))?;
    Ok(Expires::after(SystemClock.now(), d))
}

pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_at(path))?;
    file.write_all(bytes).map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}

fn init(a: InitArgs) -> Result<()> {
    let pass = a.passphrase_file.as_deref();
    let online = [
        role(&a.online.targets, pass, "targets")?,
        role(&a.online.snapshot, pass, "snapshot")?,
        role(&a.online.timestamp, pass, "timestamp")?,
    ];
    if let Some(path) = &a.proposal {
        let keys = a
            .root_keys
            .iter()
            .map(|k| keyfile::public_key_of(&k.to_string_lossy(), None))
            .collect::<Result<Vec<_>>>()?;
        let [targets, snapshot, timestamp] = online;
        let spec = RootSpec {
            root: RoleSpec {
                threshold: a.root_threshold.unwrap_or(keys.len() as u32),
                keys,
            },
            targets,
            snapshot,
            timestamp,
        };
        let mut root = build_root(&spec, 1, expires(a.expires)?)?;
        offline_roles(&mut root, &a.online.offline_update, pass)?;
        let proposal = ferry_core::proposal::Proposal::root(
            ferry_core::proposal::RepositoryKind::Director,
            &root,
            None,
        )?;
        write_new(path, &proposal.to_bytes()?)?;
        print!("{}", proposal.summary()?);
        println!(
            "wrote the proposal for director root version 1 to {}",
            path.display()
        );
        return Ok(());
    }
    let out = a
        .out
        .as_ref()
        .ok_or_else(|| Error::Usage("give --out FILE (or --proposal FILE)".into()))?;
    let root_keys = private_keys(&a.root_keys, pass)?;
    let offline = match a.online.offline_update.is_empty() {
        true => None,
        false => Some(role(&a.online.offline_update, pass, "offline-update")?),
    };
    let bytes = first_root_with(&root_keys, a.root_threshold, online, offline, a.expires)?;
    write_new(out, &bytes)?;
    println!("wrote director root version 1 to {}", out.display());
    Ok(())
}

/// Root version 1, signed by every one of `root_keys`; `online` are the targets, snapshot
/// and timestamp roles. The threshold defaults to all root keys.
pub fn first_root(
    root_keys: &[std::sync::Arc<dyn Signer>],
    threshold: Option<u32>,
    online: [RoleSpec; 3],
    lifetime: std::time::Duration,
) -> Result<Vec<u8>> {
    first_root_with(root_keys, threshold, online, None, lifetime)
}

/// [`first_root`], with the PURE-2 offline-update roles when `offline` is given.
pub fn first_root_with(
    root_keys: &[std::sync::Arc<dyn Signer>],
    threshold: Option<u32>,
    online: [RoleSpec; 3],
    offline: Option<RoleSpec>,
    lifetime: std::time::Duration,
) -> Result<Vec<u8>> {
    let [targets, snapshot, timestamp] = online;
    let spec = RootSpec {
        root: RoleSpec {
            keys: root_keys.iter().map(|k| k.public_key().clone()).collect(),
            threshold: threshold.unwrap_or(root_keys.len() as u32),
        },
        targets,
        snapshot,
        timestamp,
    };
    let mut root = build_root(&spec, 1, expires(lifetime)?)?;
    if let Some(offline) = &offline {
        ferry_director::root::add_offline_roles(&mut root, offline)?;
    }
    let signers: Vec<&dyn Signer> = root_keys.iter().map(|k| k.as_ref()).collect();
    Ok(sign_root(root, &signers)?)
}

fn rotate(a: RotateArgs) -> Result<()> {
    let pass = a.passphrase_file.as_deref();
    let previous_bytes = std::fs::read(&a.previous).map_err(io_at(&a.previous))?;
    let previous = read_root_file(&previous_bytes, SystemClock.now())?;
    let mut spec = spec_of(&previous)?;
    let old_keys = private_keys(&a.sign_keys, pass)?;
    let new_keys = private_keys(&a.root_keys, pass)?;
    if !new_keys.is_empty() {
        spec.root = RoleSpec {
            keys: new_keys.iter().map(|k| k.public_key().clone()).collect(),
            threshold: a.root_threshold.unwrap_or(new_keys.len() as u32),
        };
    } else if let Some(t) = a.root_threshold {
        spec.root.threshold = t;
    }
    for (files, slot, what) in [
        (&a.online.targets, &mut spec.targets, "targets"),
        (&a.online.snapshot, &mut spec.snapshot, "snapshot"),
        (&a.online.timestamp, &mut spec.timestamp, "timestamp"),
    ] {
        if !files.is_empty() {
            *slot = role(files, pass, what)?;
        }
    }
    let version = previous.version + 1;
    let mut root = build_root(&spec, version, expires(a.expires)?)?;
    if a.online.offline_update.is_empty() {
        // Rotating other roles keeps the offline-update roles as they were.
        for name in ferry_core::metadata::OFFLINE_ROLES {
            if let Some(entry) = previous.roles.get(name) {
                root.roles.insert(name.to_owned(), entry.clone());
                for id in &entry.keyids {
                    if let Some(key) = previous.keys.get(id) {
                        root.keys.insert(id.clone(), key.clone());
                    }
                }
            }
        }
    } else {
        offline_roles(&mut root, &a.online.offline_update, pass)?;
    }
    let signers: Vec<&dyn Signer> = old_keys
        .iter()
        .chain(new_keys.iter())
        .map(|k| k.as_ref())
        .collect();
    let bytes = sign_root(root, &signers)?;
    // Refuse to write a root the chain check would refuse (too few old or new signatures).
    let mut trusted = ferry_core::TrustedSet::new(&previous_bytes, SystemClock.now())?;
    trusted.update_root(&bytes)?;
    write_new(&a.out, &bytes)?;
    println!(
        "wrote director root version {version} to {}",
        a.out.display()
    );
    Ok(())
}

fn import(a: ImportArgs) -> Result<()> {
    let (config, store) = super::open_store(&a.config)?;
    std::fs::create_dir_all(&config.roots_dir).map_err(io_at(&config.roots_dir))?;
    // Check the chain as the Director will: stored roots, then roots_dir, then these files.
    let mut chain: Option<ferry_core::TrustedSet> = None;
    let now = SystemClock.now();
    let mut walk = |bytes: &[u8]| -> Result<u64> {
        match &mut chain {
            None => {
                let set = ferry_core::TrustedSet::new(bytes, now)?;
                let v = set.root().version;
                chain = Some(set);
                Ok(v)
            }
            Some(set) => Ok(set.update_root(bytes)?.version),
        }
    };
    if let Some((_, bytes)) = store.latest_root()? {
        walk(&bytes)?;
    }
    let mut latest = store.latest_root()?.map_or(0, |(v, _)| v);
    for (version, path) in ferry_director::daemon::root_files(&config.roots_dir)? {
        if version > latest {
            let bytes = std::fs::read(&path).map_err(io_at(&path))?;
            latest = walk(&bytes)?;
        }
    }
    for file in &a.files {
        let bytes = std::fs::read(file).map_err(io_at(file))?;
        let version = walk(&bytes)?;
        if version <= latest && latest > 0 {
            return Err(Error::Usage(format!(
                "{}: root version {version} is not above the latest known {latest}",
                file.display()
            )));
        }
        let dest = config.roots_dir.join(format!("{version}.root.json"));
        write_new(&dest, &bytes)?;
        latest = version;
        println!("placed root version {version} at {}", dest.display());
    }
    println!("restart the Director to import it and re-sign every vehicle");
    Ok(())
}
