//! A python virtualenv with python-tuf, created under target/ on first use and shared by
//! every test (a file lock serialises creation across test processes).

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

/// The python-tuf release the interop tests pin.
pub const TUF_VERSION: &str = "7.0.1";

/// What the virtualenv installs. python-tuf does not pull in `cryptography`; without it,
/// securesystemslib verifies only ed25519 and every RSA/ECDSA signature looks bad.
const REQUIREMENTS: &[&str] = &["tuf==7.0.1", "securesystemslib[crypto]"];

/// Path to the virtualenv's python, creating the virtualenv if needed.
///
/// Panics with the failing command's output if python or pip fail: interop tests cannot run
/// without it, and a skipped interop test would hide a regression.
pub fn python() -> PathBuf {
    let root = crate::target_dir();
    std::fs::create_dir_all(&root).expect("create target dir");
    let venv = root.join(format!("py-venv-tuf-{TUF_VERSION}"));
    let py = venv.join("bin").join("python");
    let ready = venv.join(".ready");
    let lock = File::create(root.join(".py-venv.lock")).expect("create venv lock file");
    lock.lock().expect("lock venv");
    let wanted = REQUIREMENTS.join(" ");
    if std::fs::read_to_string(&ready).ok().as_deref() != Some(wanted.as_str()) {
        let system = std::env::var("FERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        if !py.exists() {
            run(Command::new(system).args(["-m", "venv"]).arg(&venv));
        }
        run(Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(REQUIREMENTS));
        std::fs::write(&ready, &wanted).expect("mark venv ready");
    }
    drop(lock);
    py
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
