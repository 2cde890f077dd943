use crate::error::{Error, Result};
use ferry_core::metadata::uptane::{DependsValue, Domain};
use ferry_image_repo::TargetOptions;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry repo add-target ./image-repo build/analytics.tar --name apps/analytics-3.0.tar \\
      --hardware-id ivi-a53 --domain app --version 3.0 \\
      --depends rootfs-image.python.version=3.12,3.13 --release-counter 7
  ferry repo publish ./image-repo

  # An OSTree commit, delivered as a static delta from the commit the fleet runs:
  ostree --repo=build/repo static-delta generate --inline --min-fallback-size=0 \
      --from=$OLD --to=$NEW --filename=os-6.1.delta
  ferry repo add-target ./image-repo os-6.1.delta --name os/torizon-6.1.delta \
      --hardware-id imx8 --version 6.1 --ostree-commit build/repo:torizon/stable --ostree-from $OLD
  # or let the delta say which commits it joins:
  ferry repo add-target ./image-repo --ostree-delta os-6.1.delta --name os/torizon-6.1.delta \
      --hardware-id imx8 --version 6.1

  # The same commit without a file: the ECU pulls it by checksum from the OSTree server
  # (the signed sha256 is the commit checksum, the length 0):
  ferry repo add-target ./image-repo --name os/torizon-6.1 --hardware-id imx8 --version 6.1 \
      --ostree-commit build/repo:torizon/stable --ostree-pull https://ostree.example.com/repo

  # A Mender artifact, as mender-artifact made it: device types, payload type, provides,
  # depends, clears and meta-data come from its headers.
  mender-artifact write module-image -T single-file -n app-1.0 -t ivi-a53 -o app-1.0.mender \
      -f app.conf -f dest_dir -f filename
  ferry repo add-target ./image-repo app-1.0.mender --from-mender --name apps/app-1.0.mender

  # Several files for an update module (a tar unpacked into its files/) and its meta-data:
  ferry repo add-target ./image-repo conf.tar --domain directory --files-tar \
      --meta-data meta.json --hardware-id ivi-a53 --version 2";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    dir: PathBuf,
    /// The image file (hashed as it is copied in); none with --ostree-pull or --ostree-delta.
    #[arg(required_unless_present_any = ["ostree_pull", "ostree_delta"])]
    file: Option<PathBuf>,
    /// Target path in the repository (default: the file's name). No `..`, no leading `/`.
    #[arg(long)]
    name: Option<String>,
    /// Hardware id of an ECU that may install it (repeatable, at least one).
    #[arg(long = "hardware-id", required_unless_present = "from_mender")]
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
    /// The OSTree commit the target delivers: a checksum, or REPO:REF resolved with `ostree
    /// rev-parse`. With a FILE, the file is a static delta (`ostree static-delta generate
    /// --inline`) that yields it; with --ostree-pull, the ECU pulls it. Sets the domain to
    /// ostree and `custom.ostree`.
    #[arg(long = "ostree-commit", value_name = "COMMIT|REPO:REF")]
    ostree_commit: Option<String>,
    /// The commit the delta was generated from (omit for a delta from nothing, `--empty`).
    #[arg(
        long = "ostree-from",
        value_name = "COMMIT",
        requires = "ostree_commit"
    )]
    ostree_from: Option<String>,
    /// The file is a Mender artifact (format version 3, one payload): its headers give the
    /// hardware ids (device types; --hardware-id overrides them), the domain (payload type,
    /// rootfs-image → os), provides, depends, clears and meta-data. Every part is checked
    /// against the artifact's manifest.
    #[arg(
        long = "from-mender",
        conflicts_with_all = ["domain", "software_name", "version", "provides", "depends", "clears", "ostree_commit", "meta_data", "files_tar"]
    )]
    from_mender: bool,
    /// A JSON object for the update module's `header/meta-data`.
    #[arg(long = "meta-data", value_name = "FILE")]
    meta_data: Option<PathBuf>,
    /// The file is a tar whose files the update module finds in its `files/` (several files
    /// per target), instead of the file itself.
    #[arg(long = "files-tar")]
    files_tar: bool,
    /// A target without a file: the ECU pulls the --ostree-commit by its checksum from the
    /// OSTree repository at this http(s) URL (`custom.ostree.delivery = "pull"`). Needs
    /// --name; not for offline bundles or the relay.
    /// The image is this OSTree static delta (made with `static-delta generate --inline
    /// --filename`): the commit it yields and the one it starts from are read from its
    /// superblock, instead of --ostree-commit/--ostree-from. Replaces FILE.
    #[arg(
        long = "ostree-delta",
        value_name = "FILE",
        conflicts_with_all = ["file", "ostree_commit", "ostree_from", "ostree_pull", "from_mender"]
    )]
    ostree_delta: Option<PathBuf>,
    #[arg(
        long = "ostree-pull",
        value_name = "URL",
        requires_all = ["ostree_commit", "name"],
        conflicts_with_all = ["file", "ostree_from", "sha512"]
    )]
    ostree_pull: Option<String>,
    #[arg(long)]
    json: bool,
}

/// `--meta-data FILE`: a JSON object.
fn meta_data(path: &std::path::Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).map_err(crate::error::io_at(path))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Usage(format!("--meta-data {}: not JSON: {e}", path.display())))?;
    if !value.is_object() {
        return Err(Error::Usage(format!(
            "--meta-data {}: expected a JSON object (Mender's meta-data is one)",
            path.display()
        )));
    }
    Ok(value)
}

/// `custom.ostree` for `--ostree-commit` with `--ostree-from`, or `--ostree-pull`.
fn ostree_custom(
    commit: &str,
    from: Option<&str>,
    pull: Option<&str>,
) -> Result<(String, serde_json::Value)> {
    use ferry_core::metadata::uptane::{is_ostree_checksum, OstreeCustom, OstreeDelivery};
    let commit = if is_ostree_checksum(commit) {
        commit.to_owned()
    } else {
        let (repo, reference) = commit.rsplit_once(':').ok_or_else(|| {
            Error::Usage(format!(
                "--ostree-commit {commit:?}: expected a commit checksum (64 hex digits) or REPO:REF"
            ))
        })?;
        let out = std::process::Command::new("ostree")
            .arg(format!("--repo={repo}"))
            .args(["rev-parse", reference])
            .output()
            .map_err(|e| Error::Usage(format!("--ostree-commit: running ostree failed: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || !is_ostree_checksum(&text) {
            return Err(Error::Usage(format!(
                "--ostree-commit {commit:?}: `ostree --repo={repo} rev-parse {reference}` gave {:?} ({}); expected a commit checksum",
                text,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        text
    };
    if let Some(from) = from.filter(|f| !is_ostree_checksum(f)) {
        return Err(Error::Usage(format!(
            "--ostree-from {from:?}: expected a commit checksum (64 lowercase hex digits)"
        )));
    }
    if let Some(url) = pull.filter(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        return Err(Error::Usage(format!(
            "--ostree-pull {url:?}: expected the http:// or https:// URL of an OSTree repository"
        )));
    }
    let custom = serde_json::to_value(OstreeCustom {
        commit: commit.clone(),
        delivery: match pull {
            Some(_) => OstreeDelivery::Pull,
            None => OstreeDelivery::StaticDelta,
        },
        from: from.map(str::to_owned),
        url: pull.map(str::to_owned),
        extra: Default::default(),
    })
    .map_err(|e| Error::Usage(e.to_string()))?;
    Ok((commit, custom))
}

/// `--ostree-delta FILE`: the delta's (from, to) commits, from its superblock.
fn delta_commits(path: &std::path::Path) -> Result<(Option<String>, String)> {
    use ferry_core::ostree_delta::{delta_commits, offset_size, MAX_HEAD};
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(crate::error::io_at(path))?;
    let len = file.metadata().map_err(crate::error::io_at(path))?.len();
    let mut tail = vec![0u8; 3 * offset_size(len)];
    if len >= tail.len() as u64 {
        file.seek(SeekFrom::End(-(tail.len() as i64)))
            .and_then(|_| file.read_exact(&mut tail))
            .map_err(crate::error::io_at(path))?;
    }
    let mut head = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| (&mut file).take(MAX_HEAD.min(len)).read_to_end(&mut head))
        .map_err(crate::error::io_at(path))?;
    delta_commits(len, &tail, &head).map_err(|why| {
        Error::Usage(format!(
            "--ostree-delta {}: not an OSTree static delta superblock: {why}",
            path.display()
        ))
    })
}

pub fn run(mut args: Args) -> Result<()> {
    if let Some(delta) = args.ostree_delta.take() {
        let (from, to) = delta_commits(&delta)?;
        args.ostree_commit = Some(to);
        args.ostree_from = from;
        args.file = Some(delta);
    }
    let mut repo = super::open(&args.dir)?;
    let mut extra = std::collections::BTreeMap::new();
    let mut domain = args.domain.as_deref().map(Domain::parse);
    let mut pull_commit = None;
    if let Some(commit) = &args.ostree_commit {
        if domain.as_ref().is_some_and(|d| *d != Domain::Ostree) {
            return Err(Error::Usage(
                "--ostree-commit makes an ostree target: leave out --domain or give --domain ostree"
                    .into(),
            ));
        }
        domain = Some(Domain::Ostree);
        let (commit, custom) = ostree_custom(
            commit,
            args.ostree_from.as_deref(),
            args.ostree_pull.as_deref(),
        )?;
        pull_commit = args.ostree_pull.is_some().then_some(commit);
        extra.insert(
            ferry_core::metadata::uptane::OSTREE_FIELD.to_owned(),
            custom,
        );
    } else if domain == Some(Domain::Ostree) {
        return Err(Error::Usage(
            "--domain ostree needs --ostree-commit: which commit the delta yields".into(),
        ));
    }
    if let Some(path) = &args.meta_data {
        extra.insert("metaData".to_owned(), meta_data(path)?);
    }
    if args.files_tar {
        extra.insert(
            ferry_secondary::mender::FILES_FIELD.to_owned(),
            serde_json::Value::from("tar"),
        );
    }
    let mut options = TargetOptions {
        name: args.name,
        hardware_ids: args.hardware_ids,
        domain,
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
        extra,
    };
    if args.from_mender {
        let file = args
            .file
            .as_ref()
            .ok_or_else(|| Error::Usage("--from-mender needs the artifact FILE".into()))?;
        let artifact = super::from_mender::read(file)?;
        let from = super::from_mender::options(&artifact)?;
        if options.hardware_ids.is_empty() {
            options.hardware_ids = from.hardware_ids;
        }
        if options.hardware_ids.is_empty() {
            return Err(Error::Usage(
                "the artifact names no device type; give --hardware-id".into(),
            ));
        }
        options.domain = Some(from.domain);
        options.software_name = Some(from.software_name);
        options.provides = from.provides;
        options.depends = from.depends;
        options.clears = from.clears;
        options.extra.extend(from.extra);
    }
    let (name, target) = match (pull_commit, &args.file, &options.name) {
        (Some(commit), _, Some(name)) => repo.add_pull_target(name, &commit, &options)?,
        (None, Some(file), _) => {
            let total = std::fs::metadata(file)
                .map_err(crate::error::io_at(file))?
                .len();
            let bar = crate::progress::bytes_bar(total, "hashing");
            let added = repo.add_target(file, &options, &mut |done| bar.set_position(done))?;
            bar.finish_and_clear();
            added
        }
        _ => {
            return Err(Error::Usage(
                "give the image FILE, or --ostree-pull URL with --ostree-commit and --name".into(),
            ))
        }
    };
    if args.json {
        let out = serde_json::json!({"name": name, "target": target});
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else if args.ostree_pull.is_some() {
        println!(
            "staged {name} (no file: ECUs pull commit {} themselves); run `ferry repo publish` to sign it",
            target.hashes.get("sha256").map_or("", String::as_str)
        );
    } else {
        println!(
            "staged {name} ({} bytes); run `ferry repo publish` to sign it",
            target.length
        );
    }
    Ok(())
}
