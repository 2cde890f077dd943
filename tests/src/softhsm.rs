//! SoftHSM2 tokens for PKCS#11 tests. Each [`SoftHsm`] is a token directory of its own with
//! its own `softhsm2.conf`; SoftHSM2 finds that file through `SOFTHSM2_CONF`, which it reads
//! once per process when the module is initialised. So a test never sets the variable in its
//! own (multi-threaded) process: it runs `ferry` or `softhsm2-util` as a child with the
//! variable set ([`SoftHsm::command`]), or runs its own body again in a child copy of the
//! test binary ([`SoftHsm::rerun_in_child`], [`SoftHsm::in_child`]).
//!
//! The tests skip, saying why, only when the SoftHSM2 module is not installed; with the
//! module present, a missing `softhsm2-util` fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where Debian's `softhsm2` package puts the module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The label, user PIN and security officer PIN of every test token.
pub const TOKEN: &str = "ferry";
pub const PIN: &str = "ferrypin42";
pub const SO_PIN: &str = "5678";
/// Set in a child copy of a test binary: the token directory to use.
const CHILD_ENV: &str = "FERRY_TEST_SOFTHSM_DIR";

/// A SoftHSM2 token in a temporary directory: `softhsm2.conf`, `tokens/`, and `pin` (the user
/// PIN, for `pin-source=file:`).
#[derive(Debug)]
pub struct SoftHsm {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl SoftHsm {
    /// A fresh, initialised token labelled [`TOKEN`]; `None`, with the reason printed, when
    /// the SoftHSM2 module is not installed.
    pub fn new() -> Option<SoftHsm> {
        if !Path::new(MODULE).exists() {
            eprintln!("skipped: SoftHSM2 is not installed ({MODULE} is absent; apt-get install softhsm2 opensc)");
            return None;
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_owned();
        std::fs::create_dir(dir.join("tokens")).expect("create token dir");
        std::fs::write(
            dir.join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .expect("write softhsm2.conf");
        std::fs::write(dir.join("pin"), format!("{PIN}\n")).expect("write pin file");
        let hsm = SoftHsm {
            dir,
            _tmp: Some(tmp),
        };
        hsm.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
        );
        Some(hsm)
    }

    /// Run `body` against a fresh token in a child copy of this test binary (see the module
    /// documentation); `name` is the test's own name, as libtest filters it. Skips (with a
    /// printed reason) only when SoftHSM2 is not installed.
    pub fn test_in_child(name: &str, body: impl FnOnce(&SoftHsm)) {
        if let Some(hsm) = SoftHsm::in_child() {
            body(&hsm);
        } else if let Some(hsm) = SoftHsm::new() {
            hsm.rerun_in_child(name);
        }
    }

    /// In a child started by [`SoftHsm::rerun_in_child`]: the parent's token. `None` in the
    /// parent.
    pub fn in_child() -> Option<SoftHsm> {
        let dir = std::env::var_os(CHILD_ENV)?;
        Some(SoftHsm {
            dir: PathBuf::from(dir),
            _tmp: None,
        })
    }

    /// Run test `name` of the current test binary again, alone, in a child process whose
    /// `SOFTHSM2_CONF` names this token; fails if the child's test fails.
    pub fn rerun_in_child(&self, name: &str) {
        let exe = std::env::current_exe().expect("current test binary");
        let out = self
            .command(exe)
            .env(CHILD_ENV, &self.dir)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .output()
            .expect("run the test binary again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "test {name} in the child process failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }

    /// The file holding the user PIN.
    pub fn pin_file(&self) -> PathBuf {
        self.dir.join("pin")
    }

    /// The URI of key `object` on this token, with module and PIN file.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={TOKEN};object={object}?module-path={MODULE}&pin-source=file:{}",
            self.pin_file().display()
        )
    }

    /// The URI of key `object` without a PIN (module only).
    pub fn uri_without_pin(&self, object: &str) -> String {
        format!("pkcs11:token={TOKEN};object={object}?module-path={MODULE}")
    }

    /// `program` with `SOFTHSM2_CONF` naming this token's configuration.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SOFTHSM2_CONF", self.conf());
        cmd
    }

    /// Run `program args` against this token; panics with its output if it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} (SoftHSM2 is installed, so it should be): {e}")
            });
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Import a plaintext PKCS#8 PEM key pair (e.g. from `ferry key gen --insecure-plaintext`)
    /// as `label` with CKA_ID `id_hex`, the way an operator moves an existing key onto a token.
    pub fn import_pkcs8(&self, pem: &Path, label: &str, id_hex: &str) {
        let pem = pem.to_str().expect("utf-8 path");
        self.run(
            "softhsm2-util",
            &[
                "--import", pem, "--token", TOKEN, "--label", label, "--id", id_hex, "--pin", PIN,
            ],
        );
    }

    /// `pkcs11-tool --list-objects` as the user: what a person would check on the token.
    pub fn list_objects(&self) -> String {
        let out = self.run(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
