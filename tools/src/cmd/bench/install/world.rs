//! The backend and vehicle of `ferry bench install`, set up only through the CLIs on
//! 127.0.0.1: an Image repository holding the image (`ferry repo init/add-target/publish/
//! serve`), a Director with an offline root and an admin token (`ferry director init`,
//! `ferry key gen`, `ferry director root init`, `ferry director token create`, `serve`), the
//! vehicle registered and the image assigned to its one Secondary (`ferry admin`), a
//! `ferry-secondary` with full verification, and a primary.toml whose own ECU has no
//! assignment. For `ferry bench bundle` the Director's root also names an offline-update key
//! and, instead of an assignment, `ferry admin bundle create` writes the image into a PURE-2
//! bundle directory, after which the backend is stopped.

use super::procs::{run_ok, Daemon};
use crate::error::{io_at, Error, Result};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const VIN: &str = "BENCH-INSTALL-1";
pub const PRIMARY: &str = "ivi-1";
pub const SECONDARY: &str = "tcu-1";
/// The image's target name.
pub const TARGET: &str = "bench/image.bin";

/// Where the benchmark's update comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Assigned by the Director and downloaded from the Image repository.
    Online,
    /// In the offline-update bundle directory [`BUNDLE`], made by the Director.
    Bundle,
}

/// The bundle directory of [`Source::Bundle`], relative to the work directory.
pub const BUNDLE: &str = "bundle";

/// The running servers; dropped (killed) in reverse order of start.
#[derive(Debug)]
pub struct World {
    pub secondary: Daemon,
    /// Held only to be killed on drop.
    _director: Daemon,
    /// The Image repository's server, whose CPU time is reported.
    pub repo: Daemon,
}

impl World {
    /// Stop the Director and the Image repository; the Secondary keeps running.
    pub fn without_backend(self) -> Daemon {
        self.secondary
    }
}

fn private_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io_at(path))?;
    let mut perms = std::fs::metadata(path).map_err(io_at(path))?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(path, perms).map_err(io_at(path))
}

fn json_field(text: &str, field: &str, what: &str) -> Result<String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::Bench(format!("{what}: output is not JSON ({e}): {text}")))?;
    match &v[field] {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Null => Err(Error::Bench(format!("{what}: no {field:?} in {text}"))),
        other => Ok(other.to_string()),
    }
}

/// Set up everything in `dir` around the image file `image` (a file name in `dir`).
pub fn start(
    dir: &Path,
    ferry: &Path,
    secondary_bin: &Path,
    bar: &ProgressBar,
    source: Source,
) -> Result<World> {
    let f = |args: &[&str], name: &str| run_ok(dir, ferry, args, name);

    bar.set_message("image repository: adding and publishing the image");
    f(&["repo", "init", "img"], "repo-init")?;
    f(
        &[
            "repo",
            "add-target",
            "img",
            "image.bin",
            "--name",
            TARGET,
            "--hardware-id",
            "tcu",
            "--version",
            "1",
        ],
        "repo-add-target",
    )?;
    f(&["repo", "publish", "img"], "repo-publish")?;
    let mut cmd = Command::new(ferry);
    cmd.args(["repo", "serve", "img", "--listen", "127.0.0.1:0"]);
    let repo = Daemon::start(dir, cmd, "repo-serve")?;

    bar.set_message("director: keys, offline root, tokens");
    f(
        &["director", "init", "d", "--listen", "127.0.0.1:0"],
        "director-init",
    )?;
    for key in ["root", PRIMARY, SECONDARY] {
        let out = format!("{key}.key");
        f(
            &[
                "key",
                "gen",
                "--type",
                "ed25519",
                "--out",
                &out,
                "--insecure-plaintext",
            ],
            "key-gen",
        )?;
    }
    f(
        &[
            "director",
            "root",
            "init",
            "--root-key",
            "root.key",
            "--targets-key",
            "d/keys/targets.pem",
            "--snapshot-key",
            "d/keys/snapshot.pem",
            "--timestamp-key",
            "d/keys/timestamp.pem",
            "--out",
            "d/roots/1.root.json",
        ]
        .into_iter()
        .chain(
            (source == Source::Bundle)
                .then_some(["--offline-update-key", "d/keys/offline-update.pem"])
                .into_iter()
                .flatten(),
        )
        .collect::<Vec<_>>(),
        "director-root-init",
    )?;
    let out = f(
        &[
            "director",
            "token",
            "create",
            "--config",
            "d/director.toml",
            "--name",
            "ops",
            "--scope",
            "write",
            "--json",
        ],
        "director-token",
    )?;
    let token = json_field(&out, "token", "ferry director token create")?;
    private_file(&dir.join("ops.token"), &token)?;
    let config = dir.join("d/director.toml");
    let mut text = std::fs::read_to_string(&config).map_err(io_at(&config))?;
    text.push_str(&format!(
        "\n[image_repo]\nurl = \"http://{}\"\nroot = \"../img/metadata/1.root.json\"\n",
        repo.addr
    ));
    std::fs::write(&config, text).map_err(io_at(&config))?;
    let mut cmd = Command::new(ferry);
    cmd.args(["director", "serve", "--config", "d/director.toml", "--json"]);
    let director = Daemon::start(dir, cmd, "director-serve")?;

    bar.set_message("vehicle: registering and assigning the image");
    let url = format!("http://{}", director.addr);
    let admin = |args: &[&str], name: &str| {
        let mut full = vec!["admin", "--url", &url, "--token-file", "ops.token"];
        full.extend_from_slice(args);
        run_ok(dir, ferry, &full, name)
    };
    let primary_ecu = format!("{PRIMARY}:ivi:{PRIMARY}.key");
    let secondary_ecu = format!("{SECONDARY}:tcu:{SECONDARY}.key");
    let out = admin(
        &[
            "vehicle",
            "add",
            "--vin",
            VIN,
            "--primary",
            &primary_ecu,
            "--secondary",
            &secondary_ecu,
        ],
        "admin-vehicle-add",
    )?;
    private_file(&dir.join("device.token"), out.trim())?;
    match source {
        Source::Online => {
            let assignment = format!("{SECONDARY}={TARGET}");
            admin(&["assign", VIN, "--target", &assignment], "admin-assign")?;
        }
        Source::Bundle => {
            bar.set_message("director: signing the offline-update bundle, writing its images");
            let repo_url = format!("http://{}", repo.addr);
            admin(
                &[
                    "bundle",
                    "create",
                    "bench",
                    "--target",
                    &format!("tcu={TARGET}"),
                    "--image-repo",
                    &repo_url,
                    "--image-root",
                    "img/metadata/1.root.json",
                    "--out",
                    BUNDLE,
                ],
                "admin-bundle-create",
            )?;
        }
    }

    bar.set_message("starting ferry-secondary (full verification)");
    let toml = format!(
        "vin = \"{VIN}\"\nserial = \"{SECONDARY}\"\nhardware_id = \"tcu\"\nkey = \"{SECONDARY}.key\"\n\
         listen = \"127.0.0.1:0\"\ndata_dir = \"{SECONDARY}-state\"\nverification = \"full\"\n\
         director_root = \"d/roots/1.root.json\"\nimage_root = \"img/metadata/1.root.json\"\n\
         apps_dir = \"{SECONDARY}-apps\"\n"
    );
    let path = dir.join(format!("{SECONDARY}.toml"));
    std::fs::write(&path, toml).map_err(io_at(&path))?;
    let mut cmd = Command::new(secondary_bin);
    cmd.arg("--config").arg(&path).env("RUST_LOG", "info");
    let secondary = Daemon::start(dir, cmd, "ferry-secondary")?;

    let toml = format!(
        "vin = \"{VIN}\"\ndata_dir = \"primary-state\"\npoll_interval = \"1s\"\n\
         [director]\nurl = \"{url}\"\nroot = \"d/roots/1.root.json\"\ntoken_file = \"device.token\"\n\
         [image_repo]\nurl = \"http://{}\"\nroot = \"img/metadata/1.root.json\"\n\
         [ecu]\nserial = \"{PRIMARY}\"\nhardware_id = \"ivi\"\nkey = \"{PRIMARY}.key\"\napps_dir = \"{PRIMARY}-apps\"\n\
         [[secondaries]]\nserial = \"{SECONDARY}\"\nurl = \"http://{}\"\n\
         [download]\nmin_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
        repo.addr, secondary.addr
    );
    let path = dir.join("primary.toml");
    std::fs::write(&path, toml).map_err(io_at(&path))?;
    Ok(World {
        secondary,
        _director: director,
        repo,
    })
}

/// Where the Secondary installed the image, if it names it (for the post-run check).
pub fn installed_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join(format!("{SECONDARY}-apps"))];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}
