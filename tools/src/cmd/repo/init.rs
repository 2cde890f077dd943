use crate::error::{Error, Result};
use ferry_core::{Clock, SystemClock};
use std::collections::BTreeMap;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo init ./image-repo --expires timestamp=12h --key root=offline-root.pem";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Directory to create the repository in.
    dir: PathBuf,
    /// Use an existing private key file for a role (repeatable; a role may get several).
    #[arg(long = "key", value_name = "ROLE=FILE", value_parser = super::role_pair)]
    keys: Vec<(String, String)>,
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
    let (_, report) = ferry_image_repo::init(&args.dir, SystemClock.now(), &options)?;
    if !args.json {
        println!("created repository in {}", args.dir.display());
    }
    super::print_report(&report, args.json)
}
