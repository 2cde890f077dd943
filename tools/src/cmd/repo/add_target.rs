use crate::error::{Error, Result};
use ferry_core::metadata::uptane::{DependsValue, Domain};
use ferry_image_repo::TargetOptions;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo add-target ./image-repo build/analytics.tar --name apps/analytics-3.0.tar \\
      --hardware-id ivi-a53 --domain app --version 3.0 \\
      --depends rootfs-image.python.version=3.12,3.13 --release-counter 7
  ferry repo publish ./image-repo";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// The image file (hashed as it is copied in).
    file: PathBuf,
    /// Target path in the repository (default: the file's name). No `..`, no leading `/`.
    #[arg(long)]
    name: Option<String>,
    /// Hardware id of an ECU that may install it (repeatable, at least one).
    #[arg(long = "hardware-id", required = true)]
    hardware_ids: Vec<String>,
    /// Update domain: os, app, container, or an update module's name (default: app).
    #[arg(long)]
    domain: Option<String>,
    /// Software name (default: the file name without extension).
    #[arg(long = "software-name")]
    software_name: Option<String>,
    /// Software version; also sets the domain's default `.version` provide.
    #[arg(long)]
    version: Option<String>,
    /// Provides KEY=VALUE (repeatable).
    #[arg(long = "provides", value_name = "K=V", value_parser = super::role_pair)]
    provides: Vec<(String, String)>,
    /// Depends KEY=V1[,V2...]: the ECU must provide one of the values (repeatable).
    #[arg(long = "depends", value_name = "K=V1,V2", value_parser = super::role_pair)]
    depends: Vec<(String, String)>,
    /// Provides patterns this install clears (default: the domain's namespace).
    #[arg(long = "clears", value_name = "PATTERN")]
    clears: Vec<String>,
    /// Uptane release counter: ECUs refuse a lower one than installed.
    #[arg(long = "release-counter", default_value_t = 0)]
    release_counter: u64,
    /// Delegated role to add it to (default: top-level targets, or its hashed bin).
    #[arg(long)]
    role: Option<String>,
    /// Also sign a sha512 hash besides sha256. Every ECU verifies every signed hash, and
    /// sha512 costs each of them ~4x sha256's time on CPUs with SHA-NI.
    #[arg(long)]
    sha512: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut repo = super::open(&args.dir)?;
    let total = std::fs::metadata(&args.file)
        .map_err(crate::error::io_at(&args.file))?
        .len();
    let options = TargetOptions {
        name: args.name,
        hardware_ids: args.hardware_ids,
        domain: args.domain.as_deref().map(Domain::parse),
        software_name: args.software_name,
        version: args.version,
        provides: args.provides.into_iter().collect(),
        depends: args
            .depends
            .into_iter()
            .map(|(k, v)| {
                let values: Vec<String> = v.split(',').map(str::to_owned).collect();
                let value = if values.len() == 1 {
                    DependsValue::One(v)
                } else {
                    DependsValue::AnyOf(values)
                };
                (k, value)
            })
            .collect(),
        clears: (!args.clears.is_empty()).then_some(args.clears),
        release_counter: args.release_counter,
        role: args.role,
        sha512: args.sha512,
    };
    let bar = crate::progress::bytes_bar(total, "hashing");
    let (name, target) =
        repo.add_target(&args.file, &options, &mut |done| bar.set_position(done))?;
    bar.finish_and_clear();
    if args.json {
        let out = serde_json::json!({"name": name, "target": target});
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        println!(
            "staged {name} ({} bytes); run `ferry repo publish` to sign it",
            target.length
        );
    }
    Ok(())
}
