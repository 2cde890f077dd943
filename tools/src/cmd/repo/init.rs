use crate::error::{Error, Result};
use ferry_core::{Clock, SystemClock};
use ferry_image_repo::Initialised;
use std::collections::BTreeMap;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  # Production: root and targets keys stay with their holders (see `Key ceremony` in the README).
  ferry repo init ./image-repo --offline-root r1.pub --offline-root r2.pub --offline-root r3.pub \\
      --offline-targets t1.pub --offline-targets t2.pub --offline-targets t3.pub \\
      --threshold root=2 --threshold targets=2
  # then: ferry proposal sign ./image-repo/proposal.json --key r1.key --out r1.sig (on each
  # holder's host), ferry proposal merge ... --out 1.root.json, ferry repo root import ...
  # Development: every key generated here (root and targets encrypted with dev.pass).
  ferry repo init ./image-repo --expires timestamp=12h --passphrase-file dev.pass";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Directory to create the repository in.
    dir: PathBuf,
    /// Public key of an offline root key holder (repeatable): SPKI PEM, TUF key JSON (what
    /// `ferry key pub` prints), a certificate or a pkcs11: URI. Root v1 is then signed
    /// through a ceremony: init writes DIR/proposal.json.
    #[arg(long = "offline-root", value_name = "PUB")]
    offline_root: Vec<String>,
    /// Public key of an offline top-level targets key holder (repeatable). Every change to
    /// top-level targets then goes through `ferry repo targets propose`.
    #[arg(long = "offline-targets", value_name = "PUB")]
    offline_targets: Vec<String>,
    /// Use an existing key for a role (repeatable; a role may get several): an unencrypted
    /// private key file or a pkcs11: URI.
    #[arg(long = "key", value_name = "ROLE=KEYSOURCE", value_parser = super::role_pair)]
    keys: Vec<(String, String)>,
    /// Encrypt the root and targets keys generated here with the passphrase in FILE.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Signature threshold of a role.
    #[arg(long = "threshold", value_name = "ROLE=N", value_parser = super::role_pair)]
    thresholds: Vec<(String, String)>,
    /// Lifetime of a role's signatures (defaults: root 1year, targets 3months, snapshot 1week, timestamp 1day).
    #[arg(long = "expires", value_name = "ROLE=DURATION", value_parser = super::role_pair)]
    expires: Vec<(String, String)>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut options = ferry_image_repo::InitOptions::default();
    for (role, file) in args.keys {
        options
            .keys
            .entry(role)
            .or_insert_with(Vec::new)
            .push(PathBuf::from(file));
    }
    for (role, publics) in [
        ("root", &args.offline_root),
        ("targets", &args.offline_targets),
    ] {
        if !publics.is_empty() {
            let keys = publics
                .iter()
                .map(|p| crate::keyfile::public_key_of(p, None))
                .collect::<Result<Vec<_>>>()?;
            options.offline.insert(role.to_owned(), keys);
        }
    }
    options.passphrase_file = args.passphrase_file.clone();
    for (role, n) in args.thresholds {
        let n = n
            .parse()
            .map_err(|_| Error::Usage(format!("--threshold {role}={n}: not a number")))?;
        options.thresholds.insert(role, n);
    }
    let mut expires = BTreeMap::new();
    for (role, d) in args.expires {
        expires.insert(role, super::duration(&d).map_err(Error::Usage)?);
    }
    options.expires = expires;
    let local: Vec<&str> = ferry_image_repo::OFFLINE_ROLES
        .into_iter()
        .filter(|r| !options.offline.contains_key(*r))
        .collect();
    let (_, done) = ferry_image_repo::init(&args.dir, SystemClock.now(), &options)?;
    if !local.is_empty() {
        // Named on stderr every time: these keys can sign any update for every vehicle.
        let how = if args.passphrase_file.is_some() {
            "encrypted with the passphrase file"
        } else {
            "UNENCRYPTED"
        };
        eprintln!(
            "warning: the {} private key(s) are on this host, {how}, in {} (outside the served metadata/ and targets/). \
             Whoever can read them can sign any update. For production keep them offline: \
             `ferry repo init --offline-root PUB --offline-targets PUB` (README: Key ceremony).",
            local.join(" and "),
            args.dir.join("keys").display()
        );
    }
    match done {
        Initialised::Published(report) => {
            if !args.json {
                println!("created repository in {}", args.dir.display());
            }
            super::print_report(&report, args.json)
        }
        Initialised::RootProposal(path) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"created": args.dir, "root_proposal": path})
                );
            } else {
                println!(
                    "created repository in {}; root v1 waits for its key ceremony: {}\n\
                     next: each root key holder runs `ferry proposal sign {} --key KEY --out HOLDER.sig`; \
                     then `ferry proposal merge` and `ferry repo root import`",
                    args.dir.display(),
                    path.display(),
                    path.display()
                );
            }
            Ok(())
        }
        Initialised::TargetsCeremony => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"created": args.dir, "waiting_for": "targets"})
                );
            } else {
                println!(
                    "created repository in {}; top-level targets v1 waits for its key ceremony: \
                     `ferry repo targets propose {} --out targets-proposal.json`",
                    args.dir.display(),
                    args.dir.display()
                );
            }
            Ok(())
        }
    }
}
