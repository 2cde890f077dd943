//! `secondary.toml`: who this ECU is, what it trusts, where it keeps its state. Relative paths
//! are resolved against the directory of the config file.
//!
//! ```toml
//! vin = "WVW1234567890"              # the vehicle: Director metadata for another VIN is refused
//! serial = "ivi-1"                    # this ECU's serial, as the Director knows it
//! hardware_id = "ivi-a53"             # its hardwareId
//! key = "ecu.key.pem"                 # PKCS#8 PEM, unencrypted, mode 0600: signs version reports
//! listen = "127.0.0.1:9301"           # the daemon's address (port 0: any free port)
//! data_dir = "/var/lib/ferry/ivi-1"   # state.db and the image staging directory
//! verification = "full"               # or "partial"
//! director_root = "director.root.json"   # full: the Director root shipped with the ECU
//! image_root = "image.root.json"         # full: the Image repository root shipped with the ECU
//! director_targets_key = "director-targets.pub"  # partial: pinned key (TUF key JSON or SPKI PEM)
//! offline_targets_key = "offline-targets.pub"    # partial, optional: the Director's
//!                                     # offline-update-targets key (PURE-2 bundles); without
//!                                     # it a partial ECU takes no offline bundle
//! apps_dir = "/data/apps"             # the app installer's directory
//! app_health_check = ["/usr/bin/app-check"]  # optional; run after the swap, non-zero rolls back
//! app_health_timeout_secs = 300       # optional; default 14400 (4 h), then killed: rolls back
//! max_metadata_bytes = 8388608        # optional cap on a metadata bundle (413 above)
//!
//! [http]                              # optional; what one client may take of the port
//! header_read_timeout = "30s"         # a request head, and an idle kept-alive connection
//! body_timeout = "30s"                # a body must arrive within this plus 1 s per min_body_rate bytes
//! min_body_rate = 1024                # bytes/s (keep it below the Primary's download min_bytes_per_sec)
//! connections_per_address = 16        # one more from the same address is closed at accept
//!
//! [tls]                               # optional; mutual TLS on the in-vehicle link
//! cert = "ecu.pem"                    # this ECU's certificate (names the host the Primary dials)
//! key = "ecu-tls.key"                 # its key, PEM, mode 0600
//! client_ca = "vehicle-ca.pem"        # the Primary's client certificate must chain to this
//!
//! [initial_provides]                  # optional; seeds provides when state.db is created
//! "rootfs-image.python.version" = "3.12"
//!
//! [os]                                # optional; the os domain's A/B slots (install::os)
//! slots = ["slot-a.img", "slot-b.img"]   # image files or block devices
//! boot = "file"                       # or "uboot" (fw_printenv/fw_setenv), "grub" (grub-editenv)
//! boot_env = "bootenv"                # file: the environment file (default DATA_DIR/bootenv);
//!                                     # grub: the grubenv file (required)
//! bootlimit = 3                       # boots on trial before the bootloader falls back
//! health_check = ["/usr/bin/os-check"]   # optional; after the reboot, non-zero rolls back
//! reboot_command = ["systemctl", "reboot"]  # optional; none: the reboot is simulated in-process
//! timeout_secs = 300                  # health check / reboot command; default 14400 (4 h)
//! fw_printenv = "fw_printenv"         # uboot tools and grub-editenv, as programs to run
//! fw_setenv = "fw_setenv"
//! grub_editenv = "grub-editenv"
//!
//! [container]                         # optional; the container domain (install::container)
//! store_dir = "/data/containers"      # default DATA_DIR/containers
//! hook = [["sh", "-c", "tar -C \"$FERRY_OCI_LAYOUT\" -c . | podman load"],
//!         ["sh", "-c", "podman run --detach --replace --name \"$FERRY_CONTAINER_NAME\" \"$FERRY_OCI_REF_NAME\""]]
//!                                     # README's tested podman and docker recipes: "Containers
//!                                     # with podman or docker" (`docker load` cannot read OCI)
//! health_check = ["/usr/bin/stack-check"]   # optional; non-zero restores the previous image
//! timeout_secs = 600                  # per hook command / health check; default 14400 (4 h)
//! confirm = "app"                     # optional; commit only once the application confirms
//! confirm_timeout_secs = 120          # with confirm = "app": else roll back; default 300
//! keep_previous = 1                   # images kept after a commit; default 1
//!
//! [app]                               # optional; the app domain's confirmation
//! confirm = "app"                     # default "health": commit once verified
//! confirm_timeout_secs = 120          # default 300
//! keep_previous = 1                   # replaced versions kept (apps_dir/.NAME.kept/N); default 1
//!
//! [confirm_api]                       # optional; applications confirm over local HTTP:
//! listen = "127.0.0.1:9302"           #   POST /confirm/DOMAIN/NAME[?version=V], loopback only
//! token_file = "confirm.token"        #   Bearer token; 0600, created if absent (chown it to the app)
//!
//! [modules]                           # optional; Mender Update Module v3 domains (install::module)
//! dir = "/usr/share/mender/modules/v3"   # the default; one executable per domain
//! work_dir = "/data/ferry/modules"    # default DATA_DIR/modules
//! device_type = "ivi-a53"             # current_device_type; default hardware_id
//! reboot_command = ["systemctl", "reboot"]  # for modules answering NeedsArtifactReboot: Automatic
//! timeout_secs = 14400                # per module call, as Mender's ModuleTimeoutSeconds (default)
//! protocol = "mender-3"               # call modules as Debian's Mender 3.4 does (default), or "mender-4"
//! script_retry_interval_secs = 60     # a state script exiting 21 is run again after this
//! script_retry_timeout_secs = 1800    # ... for at most this long in all
//! ```

use crate::error::{Error, Result};
use ferry_keys::{FileKeySource, KeySource, PublicKey, Signer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default cap on a metadata bundle: both repositories' roots, timestamps, snapshots and
/// targets with room for delegations (TUF's default caps add up to about 7.5 MB).
pub const DEFAULT_MAX_METADATA_BYTES: usize = 8 << 20;

/// How much of the update this ECU verifies itself (Uptane 2.1.0 §5.4.4.1, §5.4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    /// Both repositories, Director against Image (the default).
    Full,
    /// Director targets only, signed by a pinned key.
    Partial,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Full => "full",
            Verification::Partial => "partial",
        }
    }
}

fn default_verification() -> Verification {
    Verification::Full
}

fn default_max_metadata() -> usize {
    DEFAULT_MAX_METADATA_BYTES
}

fn default_http() -> ferry_http::Limits {
    ferry_http::Limits {
        connections_per_address: 16,
        ..ferry_http::Limits::DEFAULT
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The vehicle this ECU belongs to: Director metadata naming another VIN is refused.
    pub vin: String,
    pub serial: String,
    pub hardware_id: String,
    pub key: PathBuf,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    #[serde(default = "default_verification")]
    pub verification: Verification,
    #[serde(default)]
    pub director_root: Option<PathBuf>,
    #[serde(default)]
    pub image_root: Option<PathBuf>,
    #[serde(default)]
    pub director_targets_key: Option<PathBuf>,
    /// Partial verification of PURE-2 offline bundles: the Director root's
    /// offline-update-targets key, pinned like `director_targets_key` (it is provisioned the
    /// same way: its public half, shipped with the ECU). Unset: offline bundles are refused.
    #[serde(default)]
    pub offline_targets_key: Option<PathBuf>,
    pub apps_dir: PathBuf,
    #[serde(default)]
    pub app_health_check: Option<Vec<String>>,
    /// Seconds the app health check may run before it is killed and fails (rolls back);
    /// default [`crate::install::capture::DEFAULT_TIMEOUT`].
    #[serde(default)]
    pub app_health_timeout_secs: Option<u64>,
    /// `[app]`: whether the app domain waits for the application's confirmation.
    #[serde(default)]
    pub app: crate::install::confirm::AppSettings,
    /// `[confirm_api]`: applications confirm over HTTP on loopback (off unless given).
    #[serde(default)]
    pub confirm_api: Option<crate::install::confirm::ConfirmApiSettings>,
    #[serde(default = "default_max_metadata")]
    pub max_metadata_bytes: usize,
    /// `[http]`: what one client may take of the port ([`ferry_http::Limits`]; 16
    /// connections per address: only the Primary should be talking).
    #[serde(default = "default_http")]
    pub http: ferry_http::Limits,
    /// `[tls]`: mutual TLS on the in-vehicle link (off unless given).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub initial_provides: BTreeMap<String, String>,
    /// The os domain; absent: this ECU installs no OS images.
    #[serde(default)]
    pub os: Option<OsConfig>,
    /// `[ostree]`: the ostree domain; absent: this ECU deploys no OSTree commits.
    #[serde(default)]
    pub ostree: Option<OstreeConfig>,
    /// `[snapshot]`: the snapshot domain; absent: this ECU's root is not btrfs snapshots.
    #[serde(default)]
    pub snapshot: Option<SnapshotConfig>,
    /// `[rauc]`: the rauc domain; absent: this ECU installs no RAUC bundles.
    #[serde(default)]
    pub rauc: Option<RaucConfig>,
    /// `[container]`: the container domain's store, runtime hook and health check.
    #[serde(default)]
    pub container: crate::install::container::ContainerSettings,
    /// `[modules]`: where update modules and their file trees live.
    #[serde(default)]
    pub modules: crate::install::module::ModuleSettings,
}

/// `[tls]`: serve the in-vehicle link over mutual TLS. Only a client presenting a certificate
/// that chains to `client_ca` (the Primary's certificate itself, or the CA that issued it) gets
/// past the handshake; the Primary pins `cert`'s CA in its `[vehicle_tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// This ECU's certificate (PEM; its name must be the host in the Primary's URL for it).
    pub cert: PathBuf,
    /// Its private key (PEM, unencrypted, mode 0600).
    pub key: PathBuf,
    /// The CA certificate(s), PEM, a Primary's client certificate must chain to.
    pub client_ca: PathBuf,
}

/// Which boot environment the os domain switches slots in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootBackend {
    #[default]
    File,
    Uboot,
    Grub,
}

/// `[os]`: see the example at the top of this module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsConfig {
    pub slots: Vec<PathBuf>,
    #[serde(default)]
    pub boot: BootBackend,
    #[serde(default)]
    pub boot_env: Option<PathBuf>,
    #[serde(default = "default_bootlimit")]
    pub bootlimit: u32,
    #[serde(default)]
    pub health_check: Option<Vec<String>>,
    #[serde(default)]
    pub reboot_command: Option<Vec<String>>,
    /// Seconds the health check or the reboot command may run before it is killed and fails
    /// (the update rolls back); default [`crate::install::capture::DEFAULT_TIMEOUT`].
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default = "default_fw_printenv")]
    pub fw_printenv: PathBuf,
    #[serde(default = "default_fw_setenv")]
    pub fw_setenv: PathBuf,
    #[serde(default = "default_grub_editenv")]
    pub grub_editenv: PathBuf,
}

/// `[ostree]`: the OS as OSTree commits in `sysroot`, deployed for stateroot `os`; boot
/// counting, health check and reboot as `[os]` has them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OstreeConfig {
    /// The sysroot holding `ostree/repo` and `ostree/deploy` ("/" on a booted device).
    #[serde(default = "default_sysroot")]
    pub sysroot: PathBuf,
    /// The stateroot (`ostree admin os-init NAME`) the OS is deployed in.
    pub os: String,
    /// The `ostree` program.
    #[serde(default = "default_ostree")]
    pub ostree: PathBuf,
    /// The remote a pull target's commit is pulled through (its TLS client certificate,
    /// headers, signature policy, as configured with `ostree remote add`), still from the
    /// signed URL. Without one, Ferry keeps a remote of its own, `ferry`, with GPG
    /// verification off: Uptane's signed commit checksum is what is trusted.
    #[serde(default)]
    pub remote: Option<String>,
    /// Where a real boot names its deployment (`ostree=`), read after a `reboot_command`.
    #[serde(default = "default_cmdline")]
    pub cmdline: PathBuf,
    #[serde(default)]
    pub boot: BootBackend,
    /// The file backend's file (default `data_dir/ostree-bootenv`), or grub's environment.
    #[serde(default)]
    pub boot_env: Option<PathBuf>,
    #[serde(default = "default_bootlimit")]
    pub bootlimit: u32,
    /// Run after the reboot with `FERRY_OSTREE_COMMIT` and `FERRY_OSTREE_DEPLOYMENT` (the
    /// checkout); non-zero rolls back.
    #[serde(default)]
    pub health_check: Option<Vec<String>>,
    #[serde(default)]
    pub reboot_command: Option<Vec<String>>,
    /// Seconds an ostree command, the health check or the reboot command may run.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default = "default_fw_printenv")]
    pub fw_printenv: PathBuf,
    #[serde(default = "default_fw_setenv")]
    pub fw_setenv: PathBuf,
    #[serde(default = "default_grub_editenv")]
    pub grub_editenv: PathBuf,
}

/// `[snapshot]`: the OS root as btrfs snapshots under `mount/ferry/snapshots`; boot counting,
/// health check and reboot as `[os]` has them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Where the btrfs file system's top level (subvolid=5) is mounted; with `device` and no
    /// `mount`, Ferry mounts it at `data_dir/snapshot-top` itself.
    #[serde(default)]
    pub mount: Option<PathBuf>,
    /// The btrfs file system's block device: Ferry mounts its top level (`-o subvolid=5`) at
    /// `mount` when nothing is mounted there.
    #[serde(default)]
    pub device: Option<PathBuf>,
    /// The running root: its subvolume is the booted snapshot after a real reboot.
    #[serde(default = "default_sysroot")]
    pub root: PathBuf,
    /// Snapshots kept after a commit (at least 2: the running one and one to go back to).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// The `btrfs` program.
    #[serde(default = "default_btrfs")]
    pub btrfs: PathBuf,
    /// `/etc` across updates: "image" (what the archive ships is the whole `/etc`) or
    /// "merge" (local files the archive does not ship are kept).
    #[serde(default)]
    pub etc: EtcMode,
    /// With `etc = "merge"`: files under `etc/` that keep the running root's version even
    /// when the archive ships them ("etc/hostname").
    #[serde(default)]
    pub etc_keep: Vec<PathBuf>,
    #[serde(default)]
    pub boot: BootBackend,
    /// The file backend's file (default `data_dir/snapshot-bootenv`), or grub's environment.
    #[serde(default)]
    pub boot_env: Option<PathBuf>,
    #[serde(default = "default_bootlimit")]
    pub bootlimit: u32,
    /// Run after the reboot with `FERRY_SNAPSHOT` and `FERRY_SNAPSHOT_PATH`; non-zero rolls
    /// back.
    #[serde(default)]
    pub health_check: Option<Vec<String>>,
    #[serde(default)]
    pub reboot_command: Option<Vec<String>>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default = "default_fw_printenv")]
    pub fw_printenv: PathBuf,
    #[serde(default = "default_fw_setenv")]
    pub fw_setenv: PathBuf,
    #[serde(default = "default_grub_editenv")]
    pub grub_editenv: PathBuf,
}

/// `[rauc]`: the OS as RAUC bundles, installed by `rauc service` (on the system bus, or
/// `bus`); boot counting, health check and reboot as `[os]` has them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaucConfig {
    /// The `rauc` program.
    #[serde(default = "default_rauc")]
    pub rauc: PathBuf,
    /// RAUC's system.conf: `rauc info` checks a bundle against its keyring before install.
    #[serde(default = "default_rauc_conf")]
    pub system_conf: PathBuf,
    /// The D-Bus address of the bus `rauc service` is on (default: the system bus).
    #[serde(default)]
    pub bus: Option<String>,
    /// Tests and demos only (no `reboot_command`): run at each simulated boot with
    /// `FERRY_RAUC_SLOT` and `FERRY_RAUC_BOOTNAME`; it must restart `rauc service` as booted
    /// from that slot (`--override-boot-slot`).
    #[serde(default)]
    pub simulated_boot_hook: Option<Vec<String>>,
    #[serde(default)]
    pub boot: BootBackend,
    /// The file backend's file (default `data_dir/rauc-bootenv`), or grub's environment.
    #[serde(default)]
    pub boot_env: Option<PathBuf>,
    #[serde(default = "default_bootlimit")]
    pub bootlimit: u32,
    /// Run after the reboot with `FERRY_RAUC_SLOT`, `FERRY_RAUC_DEVICE` and
    /// `FERRY_RAUC_VERSION`; non-zero rolls back.
    #[serde(default)]
    pub health_check: Option<Vec<String>>,
    #[serde(default)]
    pub reboot_command: Option<Vec<String>>,
    /// Seconds a rauc command, the health check or the reboot command may run.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default = "default_fw_printenv")]
    pub fw_printenv: PathBuf,
    #[serde(default = "default_fw_setenv")]
    pub fw_setenv: PathBuf,
    #[serde(default = "default_grub_editenv")]
    pub grub_editenv: PathBuf,
}

fn default_rauc() -> PathBuf {
    "rauc".into()
}
fn default_rauc_conf() -> PathBuf {
    "/etc/rauc/system.conf".into()
}

/// How the snapshot domain treats `/etc` (see [`SnapshotConfig::etc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EtcMode {
    #[default]
    Image,
    Merge,
}

fn default_keep() -> usize {
    3
}
fn default_btrfs() -> PathBuf {
    "btrfs".into()
}

fn default_sysroot() -> PathBuf {
    "/".into()
}
fn default_ostree() -> PathBuf {
    "ostree".into()
}
fn default_cmdline() -> PathBuf {
    "/proc/cmdline".into()
}

fn default_bootlimit() -> u32 {
    3
}
fn default_fw_printenv() -> PathBuf {
    "fw_printenv".into()
}
fn default_fw_setenv() -> PathBuf {
    "fw_setenv".into()
}
fn default_grub_editenv() -> PathBuf {
    "grub-editenv".into()
}

/// What the ECU trusts before any metadata arrives, read from the files the config names.
#[derive(Debug, Clone)]
pub enum Anchors {
    Full {
        director_root: Vec<u8>,
        image_root: Vec<u8>,
    },
    Partial {
        director_targets_key: PublicKey,
        /// The offline-update-targets key, when this ECU takes offline bundles (boxed: a key
        /// is large, and most ECUs pin none).
        offline_targets_key: Option<Box<PublicKey>>,
    },
}

impl Config {
    /// Read and check `path`; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.check(path)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.key);
        fix(&mut self.data_dir);
        fix(&mut self.apps_dir);
        if let Some(tls) = &mut self.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
            fix(&mut tls.client_ca);
        }
        self.container.resolve_paths(base);
        self.modules.resolve_paths(base);
        if let Some(api) = &mut self.confirm_api {
            fix(&mut api.token_file);
        }
        if let Some(os) = &mut self.os {
            os.slots.iter_mut().for_each(fix);
            if let Some(env) = &mut os.boot_env {
                fix(env);
            }
            // A bare program name is looked up in PATH; a path is relative to the file.
            for program in [&mut os.fw_printenv, &mut os.fw_setenv, &mut os.grub_editenv] {
                if program.components().count() > 1 {
                    fix(program);
                }
            }
        }
        if let Some(o) = &mut self.ostree {
            fix(&mut o.sysroot);
            if let Some(env) = &mut o.boot_env {
                fix(env);
            }
            for program in [
                &mut o.ostree,
                &mut o.fw_printenv,
                &mut o.fw_setenv,
                &mut o.grub_editenv,
            ] {
                if program.components().count() > 1 {
                    fix(program);
                }
            }
        }
        if let Some(o) = &mut self.snapshot {
            if let Some(m) = &mut o.mount {
                fix(m);
            }
            if let Some(d) = &mut o.device {
                fix(d);
            }
            if let Some(env) = &mut o.boot_env {
                fix(env);
            }
            for program in [
                &mut o.btrfs,
                &mut o.fw_printenv,
                &mut o.fw_setenv,
                &mut o.grub_editenv,
            ] {
                if program.components().count() > 1 {
                    fix(program);
                }
            }
        }
        if let Some(r) = &mut self.rauc {
            fix(&mut r.system_conf);
            if let Some(env) = &mut r.boot_env {
                fix(env);
            }
            for program in [
                &mut r.rauc,
                &mut r.fw_printenv,
                &mut r.fw_setenv,
                &mut r.grub_editenv,
            ] {
                if program.components().count() > 1 {
                    fix(program);
                }
            }
        }
        for p in [
            &mut self.director_root,
            &mut self.image_root,
            &mut self.director_targets_key,
            &mut self.offline_targets_key,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }

    /// Refuse a config that names the wrong anchors for its verification mode.
    pub fn check(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::Config {
                path: path.to_owned(),
                reason,
            })
        };
        if self.serial.is_empty() || self.hardware_id.is_empty() {
            return bad("serial and hardware_id must not be empty".into());
        }
        if let Err(reason) = self.http.check("[http]") {
            return bad(reason);
        }
        match self.verification {
            Verification::Full => {
                if self.director_root.is_none() || self.image_root.is_none() {
                    return bad("verification = \"full\" needs director_root and image_root".into());
                }
            }
            Verification::Partial => {
                if self.director_targets_key.is_none() {
                    return bad("verification = \"partial\" needs director_targets_key".into());
                }
            }
        }
        if matches!(&self.app_health_check, Some(argv) if argv.is_empty()) {
            return bad("app_health_check must name a program".into());
        }
        if self
            .ostree
            .as_ref()
            .is_some_and(|o| o.timeout_secs == Some(0))
        {
            return bad("[ostree] timeout_secs must be at least 1".into());
        }
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.timeout_secs == Some(0))
        {
            return bad("[snapshot] timeout_secs must be at least 1".into());
        }
        if self
            .rauc
            .as_ref()
            .is_some_and(|r| r.timeout_secs == Some(0))
        {
            return bad("[rauc] timeout_secs must be at least 1".into());
        }
        if let Some(s) = &self.snapshot {
            if s.mount.is_none() && s.device.is_none() {
                return bad("[snapshot] needs mount (the mounted top level) or device".into());
            }
            if !s.etc_keep.is_empty() && s.etc != EtcMode::Merge {
                return bad("[snapshot] etc_keep needs etc = \"merge\"".into());
            }
            for p in &s.etc_keep {
                let inside = p.starts_with("etc")
                    && p.components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
                    && p.components().count() > 1;
                if !inside {
                    return bad(format!(
                        "[snapshot] etc_keep: {} is not a relative path under etc/ \
                         (\"etc/hostname\")",
                        p.display()
                    ));
                }
            }
        }
        if self.snapshot.as_ref().is_some_and(|s| s.keep < 2) {
            return bad(
                "[snapshot] keep must be at least 2: the running snapshot and one to go back to"
                    .into(),
            );
        }
        if self.app_health_timeout_secs == Some(0) {
            return bad("app_health_timeout_secs must be at least 1".into());
        }
        if self.app.confirm_timeout_secs == Some(0) {
            return bad("[app] confirm_timeout_secs must be at least 1".into());
        }
        let confirm_api = self.confirm_api.as_ref().and_then(|api| api.problem());
        if let Some(problem) = self
            .container
            .problem()
            .or(self.modules.problem())
            .or(confirm_api)
        {
            return bad(problem.into());
        }
        if let Some(os) = &self.os {
            if os.slots.len() != 2 || os.slots[0] == os.slots[1] {
                return bad("[os] slots must name two different slots (A and B)".into());
            }
            if os.timeout_secs == Some(0) {
                return bad("[os] timeout_secs must be at least 1".into());
            }
            if os.boot == BootBackend::Grub && os.boot_env.is_none() {
                return bad("[os] boot = \"grub\" needs boot_env, the grubenv file".into());
            }
            for (key, argv) in [
                ("health_check", &os.health_check),
                ("reboot_command", &os.reboot_command),
            ] {
                if matches!(argv, Some(argv) if argv.is_empty()) {
                    return bad(format!("[os] {key} must name a program"));
                }
            }
        }
        Ok(())
    }

    pub fn state_db(&self) -> PathBuf {
        self.data_dir.join("state.db")
    }

    pub fn staging_dir(&self) -> PathBuf {
        self.data_dir.join("staging")
    }

    /// The ECU key's signer, from its [`KeySource`]. Refused when group or others may read
    /// the file: a version report is only worth something if nobody else can sign one.
    pub fn signer(&self) -> Result<Arc<dyn Signer>> {
        check_private_mode(&self.key)?;
        FileKeySource::new(&self.key)
            .signer()
            .map_err(|source| Error::Key {
                path: self.key.clone(),
                source,
            })
    }

    /// The `[tls]` server setup, when configured: files read and checked, the key's mode
    /// included.
    pub fn server_tls(&self) -> Result<Option<ferry_http::tls::ServerTls>> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        check_private_mode(&tls.key)?;
        ferry_http::tls::ServerTls::from_files(
            &tls.cert,
            &tls.key,
            &tls.client_ca,
            "client CA certificate",
        )
        .map(Some)
        .map_err(|reason| Error::Config {
            path: tls.cert.clone(),
            reason: format!("[tls]: {reason}"),
        })
    }

    pub fn read_anchors(&self) -> Result<Anchors> {
        let missing = |what: &str| Error::Config {
            path: self.data_dir.clone(),
            reason: format!("{what} is not set"),
        };
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p, e));
        match self.verification {
            Verification::Full => Ok(Anchors::Full {
                director_root: read(
                    self.director_root
                        .as_deref()
                        .ok_or_else(|| missing("director_root"))?,
                )?,
                image_root: read(
                    self.image_root
                        .as_deref()
                        .ok_or_else(|| missing("image_root"))?,
                )?,
            }),
            Verification::Partial => {
                let path = self
                    .director_targets_key
                    .as_deref()
                    .ok_or_else(|| missing("director_targets_key"))?;
                let offline_targets_key = match &self.offline_targets_key {
                    Some(p) => Some(Box::new(read_public_key(p, &read(p)?)?)),
                    None => None,
                };
                Ok(Anchors::Partial {
                    director_targets_key: read_public_key(path, &read(path)?)?,
                    offline_targets_key,
                })
            }
        }
    }
}

/// A public key file: TUF key JSON, or SPKI PEM.
fn read_public_key(path: &Path, bytes: &[u8]) -> Result<PublicKey> {
    if let Ok(key) = serde_json::from_slice::<PublicKey>(bytes) {
        return Ok(key);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Config {
        path: path.to_owned(),
        reason: "not TUF key JSON nor an SPKI PEM public key".into(),
    })?;
    PublicKey::from_spki_pem(text).map_err(|source| Error::Key {
        path: path.to_owned(),
        source,
    })
}

fn check_private_mode(path: &Path) -> Result<()> {
    ferry_keys::check_owner_only(path).map_err(|source| Error::Key {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
vin = "VIN1"
serial = "ivi-1"
hardware_id = "ivi-a53"
key = "ecu.key.pem"
listen = "127.0.0.1:0"
data_dir = "data"
director_root = "director.root.json"
image_root = "image.root.json"
apps_dir = "apps"
"#;

    fn checked(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(&format!("{MINIMAL}{text}")).unwrap();
        config.check(Path::new("secondary.toml"))?;
        Ok(config)
    }

    #[test]
    fn health_check_limits_are_read_and_zero_is_refused_by_name() {
        let set = checked(
            "app_health_timeout_secs = 30\n[os]\nslots = [\"a\", \"b\"]\ntimeout_secs = 60\n",
        )
        .unwrap();
        assert_eq!(set.app_health_timeout_secs, Some(30));
        assert_eq!(set.os.unwrap().timeout_secs, Some(60));
        let e = checked("app_health_timeout_secs = 0\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("app_health_timeout_secs must be at least 1"),
            "{e}"
        );
        let e = checked("[os]\nslots = [\"a\", \"b\"]\ntimeout_secs = 0\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("[os] timeout_secs must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn confirmation_settings_are_read_and_a_zero_window_is_refused_by_name() {
        use crate::install::confirm::{window, ConfirmMode};
        let set = checked(
            "[app]\nconfirm = \"app\"\n[container]\nconfirm = \"app\"\n\
             confirm_timeout_secs = 30\nkeep_previous = 0\n",
        )
        .unwrap();
        assert_eq!(set.app.confirm, ConfirmMode::App);
        assert_eq!(
            window(set.app.confirm, set.app.confirm_timeout_secs),
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(set.container.confirm_timeout_secs, Some(30));
        assert_eq!(set.container.keep_previous, Some(0));
        let api = checked("[confirm_api]\nlisten = \"[::1]:9302\"\ntoken_file = \"t\"\n")
            .unwrap()
            .confirm_api
            .unwrap();
        assert_eq!(api.listen.port(), 9302);
        let unset = checked("").unwrap();
        assert_eq!(window(unset.container.confirm, Some(30)), None);
        for (text, name) in [
            (
                "[app]\nconfirm_timeout_secs = 0\n",
                "[app] confirm_timeout_secs",
            ),
            (
                "[container]\nconfirm_timeout_secs = 0\n",
                "[container] confirm_timeout_secs",
            ),
            (
                "[confirm_api]\nlisten = \"0.0.0.0:9302\"\ntoken_file = \"t\"\n",
                "[confirm_api] listen must be a loopback address",
            ),
        ] {
            let e = checked(text).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        assert!(
            toml::from_str::<Config>(&format!("{MINIMAL}[app]\nconfirm = \"maybe\"\n")).is_err()
        );
    }

    #[test]
    fn os_mechanism_sections_refuse_limits_that_cannot_work() {
        let set = checked("[snapshot]\nmount = \"/top\"\n[ostree]\nos = \"torizon\"\n").unwrap();
        assert_eq!(set.snapshot.unwrap().keep, 3);
        assert_eq!(set.ostree.unwrap().sysroot, Path::new("/"));
        let rauc = checked("[rauc]\n").unwrap().rauc.unwrap();
        assert_eq!(rauc.system_conf, Path::new("/etc/rauc/system.conf"));
        assert_eq!(rauc.bus, None);
        for (text, needle) in [
            (
                "[snapshot]\nmount = \"/top\"\nkeep = 1\n",
                "[snapshot] keep must be at least 2",
            ),
            (
                "[snapshot]\nmount = \"/top\"\ntimeout_secs = 0\n",
                "[snapshot] timeout_secs must be at least 1",
            ),
            (
                "[snapshot]\nmount = \"/top\"\netc_keep = [\"etc/hostname\"]\n",
                "[snapshot] etc_keep needs etc = \"merge\"",
            ),
            (
                "[snapshot]\nmount = \"/top\"\netc = \"merge\"\netc_keep = [\"/etc/passwd\"]\n",
                "[snapshot] etc_keep: /etc/passwd is not a relative path under etc/",
            ),
            (
                "[snapshot]\nmount = \"/top\"\netc = \"merge\"\netc_keep = [\"etc/../usr/x\"]\n",
                "is not a relative path under etc/",
            ),
            (
                "[snapshot]\nkeep = 3\n",
                "[snapshot] needs mount (the mounted top level) or device",
            ),
            (
                "[rauc]\ntimeout_secs = 0\n",
                "[rauc] timeout_secs must be at least 1",
            ),
            (
                "[ostree]\nos = \"torizon\"\ntimeout_secs = 0\n",
                "[ostree] timeout_secs must be at least 1",
            ),
        ] {
            let e = checked(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
