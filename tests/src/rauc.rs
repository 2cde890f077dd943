//! A real RAUC system for tests, made with Debian's `rauc` (1.8): a test CA and signing
//! certificate made with openssl, two raw slot files (A and B), a custom bootloader backend
//! (a shell script keeping the primary slot and each slot's good/bad state in a file), a
//! private D-Bus system bus (`dbus-daemon` with an allow-all policy) and `rauc service` on
//! it, booted from slot A (`--override-boot-slot`). Plain bundles are made with `rauc bundle`
//! (the verity format needs device-mapper, which test machines may lack). `hook` is a
//! `[rauc] simulated_boot_hook` that restarts the service as booted from the slot the
//! simulated bootloader chose. Shared by path with ferry-secondary's own tests.

// Test fixture: a failed step is a failed test, with the step named by the panic.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The system's (and the good bundles') compatible.
pub const COMPATIBLE: &str = "ferry-test";
/// The size of each slot, and of each image (a raw image fills its slot).
pub const SLOT_SIZE: usize = 64 * 1024;

/// Whether RAUC, D-Bus, squashfs-tools and openssl run here; says why not when they do not.
pub fn rauc_available() -> bool {
    for (program, arg, package) in [
        ("rauc", "--version", "rauc"),
        ("dbus-daemon", "--version", "dbus"),
        ("mksquashfs", "-version", "squashfs-tools"),
        ("openssl", "version", "openssl"),
    ] {
        let ok = Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP: {program} does not run here (apt-get install {package})");
            return false;
        }
    }
    true
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A CA and a bundle-signing certificate it issued (no extendedKeyUsage: RAUC 1.8 refuses
/// codeSigning as "unsuitable certificate purpose").
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca = dir.join(format!("{name}-ca.pem"));
        let ca_key = dir.join(format!("{name}-ca.key"));
        let cert = dir.join(format!("{name}-signer.pem"));
        let key = dir.join(format!("{name}-signer.key"));
        let csr = dir.join(format!("{name}-signer.csr"));
        let subject = format!("/CN={name} test CA");
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                s(&ca_key),
                "-out",
                s(&ca),
                "-days",
                "3650",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
        );
        let subject = format!("/CN={name} bundle signer");
        run(
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                s(&key),
                "-out",
                s(&csr),
                "-subj",
                &subject,
            ],
        );
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                s(&csr),
                "-CA",
                s(&ca),
                "-CAkey",
                s(&ca_key),
                "-CAcreateserial",
                "-out",
                s(&cert),
                "-days",
                "3650",
            ],
        );
        Pki { ca, cert, key }
    }
}

/// The raw image of `version`: a header line a health check can read, zero-padded to a slot.
pub fn image(version: &str, healthy: bool) -> Vec<u8> {
    let health = if healthy { "healthy" } else { "sick" };
    let mut bytes = format!("ferryos {version} {health}\n").into_bytes();
    bytes.resize(SLOT_SIZE, 0);
    bytes
}

/// A plain bundle of `image(version, healthy)` for `compatible`, signed by `pki`.
pub fn bundle(dir: &Path, pki: &Pki, compatible: &str, version: &str, healthy: bool) -> Vec<u8> {
    let work = tempfile::tempdir_in(dir).unwrap();
    let content = work.path().join("content");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(content.join("rootfs.img"), image(version, healthy)).unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        format!(
            "[update]\ncompatible={compatible}\nversion={version}\n[bundle]\nformat=plain\n\
             [image.rootfs]\nfilename=rootfs.img\n"
        ),
    )
    .unwrap();
    let out = work.path().join("update.raucb");
    run(
        "rauc",
        &[
            "bundle",
            &format!("--cert={}", s(&pki.cert)),
            &format!("--key={}", s(&pki.key)),
            s(&content),
            s(&out),
        ],
    );
    std::fs::read(out).unwrap()
}

/// A running RAUC system (see the module docs); stopped on drop.
#[derive(Debug)]
pub struct System {
    pub dir: PathBuf,
    pub conf: PathBuf,
    /// The D-Bus address of the private bus.
    pub bus: String,
    /// A `simulated_boot_hook`: restarts `rauc service` booted from `$FERRY_RAUC_BOOTNAME`.
    pub hook: PathBuf,
    bootloader_state: PathBuf,
    dbus: std::process::Child,
}

impl System {
    /// Slots A (holding `image("1", true)`, booted) and B (empty), keyring `ca`.
    pub fn start(dir: &Path, ca: &Path) -> System {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        std::fs::write(dir.join("slot-a"), image("1", true)).unwrap();
        std::fs::write(dir.join("slot-b"), vec![0u8; SLOT_SIZE]).unwrap();
        let state = dir.join("bootloader.state");
        std::fs::write(&state, "primary=A\nstate_A=good\nstate_B=good\n").unwrap();
        // RAUC's custom bootloader backend; set-primary also makes the slot good, as a
        // bootloader resetting the slot's boot attempts does.
        let backend = dir.join("bootloader.sh");
        std::fs::write(
            &backend,
            format!(
                "#!/bin/sh\nS='{state}'\n. \"$S\"\ncase \"$1\" in\n\
                 get-primary) echo \"$primary\" ;;\n\
                 set-primary) sed -i \"s/^primary=.*/primary=$2/;s/^state_$2=.*/state_$2=good/\" \"$S\" ;;\n\
                 get-state) eval echo \\$state_$2 ;;\n\
                 set-state) sed -i \"s/^state_$2=.*/state_$2=$3/\" \"$S\" ;;\n\
                 *) exit 1 ;;\nesac\n",
                state = s(&state)
            ),
        )
        .unwrap();
        chmod_x(&backend);
        let conf = dir.join("system.conf");
        std::fs::write(
            &conf,
            format!(
                "[system]\ncompatible={COMPATIBLE}\nbootloader=custom\ndata-directory={data}\n\
                 mountprefix={mnt}\n[handlers]\nbootloader-custom-backend={backend}\n[keyring]\npath={ca}\n\
                 [slot.rootfs.0]\ndevice={a}\ntype=raw\nbootname=A\n\
                 [slot.rootfs.1]\ndevice={b}\ntype=raw\nbootname=B\n",
                data = s(&dir.join("data")),
                // Its own mount prefix: RAUC's default, /mnt/rauc, is one directory for every
                // service on the host, and tests running side by side mounted their bundles
                // over each other's there ("rauc install failed" in one of them).
                mnt = s(&dir.join("mnt")),
                backend = s(&backend),
                ca = s(ca),
                a = s(&dir.join("slot-a")),
                b = s(&dir.join("slot-b")),
            ),
        )
        .unwrap();
        let socket = dir.join("bus");
        let bus = format!("unix:path={}", s(&socket));
        std::fs::write(
            dir.join("bus.conf"),
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>system</type><listen>{bus}</listen><auth>EXTERNAL</auth>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/><allow user=\"*\"/></policy>\
                 </busconfig>\n"
            ),
        )
        .unwrap();
        let dbus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", s(&dir.join("bus.conf"))))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The hook restarts the service as booted from the slot named in its environment;
        // its output goes to a file so the service never holds the hook's pipes open.
        let hook = dir.join("restart-rauc.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nD='{dir}'\nexport DBUS_SYSTEM_BUS_ADDRESS='{bus}'\n\
                 if [ -f \"$D/rauc.pid\" ]; then\n  pid=$(cat \"$D/rauc.pid\")\n  kill \"$pid\" 2>/dev/null\n\
                 \x20 while kill -0 \"$pid\" 2>/dev/null; do sleep 0.05; done\nfi\n\
                 setsid rauc service --conf='{conf}' --override-boot-slot=\"$FERRY_RAUC_BOOTNAME\" \
                 >>\"$D/rauc.log\" 2>&1 </dev/null &\necho $! > \"$D/rauc.pid\"\n\
                 for i in $(seq 600); do\n  rauc status >/dev/null 2>&1 && exit 0\n  sleep 0.05\ndone\n\
                 echo 'rauc service did not answer on the bus' >&2\nexit 1\n",
                dir = s(dir),
                conf = s(&conf),
            ),
        )
        .unwrap();
        chmod_x(&hook);
        let system = System {
            dir: dir.to_owned(),
            conf,
            bus,
            hook,
            bootloader_state: state,
            dbus,
        };
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        system.boot("A");
        system
    }

    /// Restart `rauc service` as booted from `bootname` (what a reboot into it does).
    pub fn boot(&self, bootname: &str) {
        let out = Command::new(&self.hook)
            .env("FERRY_RAUC_BOOTNAME", bootname)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restarting rauc service: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The bytes of slot A or B.
    pub fn slot(&self, bootname: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(format!("slot-{}", bootname.to_lowercase()))).unwrap()
    }

    /// The custom bootloader's state: primary, state_A, state_B.
    pub fn bootloader(&self) -> std::collections::BTreeMap<String, String> {
        std::fs::read_to_string(&self.bootloader_state)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// `rauc status` as RAUC reports it (JSON).
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new("rauc")
            .args(["status", "--detailed", "--output-format=json"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The `[rauc]` section for this system (simulated reboots through [`System::hook`]).
    pub fn section(&self, health_check: &str) -> String {
        format!(
            "[rauc]\nsystem_conf = \"{}\"\nbus = \"{}\"\nsimulated_boot_hook = [\"{}\"]\n\
             health_check = [\"sh\", \"-c\", {health_check:?}]\n",
            s(&self.conf),
            self.bus,
            s(&self.hook)
        )
    }
}

/// The health check of the tests: the booted slot's image says "healthy".
pub const HEALTHY: &str = "head -c 32 \"$FERRY_RAUC_DEVICE\" | grep -q healthy";

fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Drop for System {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("rauc.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
}
