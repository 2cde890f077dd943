//! The python baseline's interpreter: python-tuf 7.0.1 with pyca/cryptography in a virtualenv
//! the bench creates on first use (the same requirements as ferry-tests' interop venv), or an
//! interpreter the user names with `--python`.

use crate::error::{io_at, Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The python-tuf release the baseline pins.
pub const TUF_VERSION: &str = "7.0.1";

/// What the virtualenv installs. python-tuf does not pull in `cryptography`; without it,
/// securesystemslib cannot sign.
const REQUIREMENTS: &[&str] = &["tuf==7.0.1", "securesystemslib[crypto]"];

/// Where the bench keeps its virtualenv: `$FERRY_BENCH_DIR/venv-tuf-7.0.1`, else
/// `target/bench-venv` under the current directory.
pub fn default_venv() -> PathBuf {
    match std::env::var_os("FERRY_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir).join(format!("venv-tuf-{TUF_VERSION}")),
        None => PathBuf::from("target").join("bench-venv"),
    }
}

/// The interpreter to run the baseline with: `explicit` if given, else the bench virtualenv's
/// python, created (`python3 -m venv` + `pip install`) if missing. Says on stderr what it does,
/// and checks that the interpreter really has python-tuf 7.0.1.
pub fn interpreter(explicit: Option<&Path>) -> Result<PathBuf> {
    let py = match explicit {
        Some(py) => py.to_owned(),
        None => ensure_venv(&default_venv())?,
    };
    let version = tuf_version(&py)?;
    if version != TUF_VERSION {
        return Err(failure(
            &py,
            format!(
                "has python-tuf {version}; the baseline is python-tuf {TUF_VERSION} \
                 (omit --python to let the bench create its own virtualenv)"
            ),
        ));
    }
    Ok(py)
}

fn ensure_venv(venv: &Path) -> Result<PathBuf> {
    let venv = std::path::absolute(venv).map_err(io_at(venv))?;
    let py = venv.join("bin").join("python");
    let ready = venv.join(".ready");
    let wanted = REQUIREMENTS.join(" ");
    if std::fs::read_to_string(&ready).ok().as_deref() == Some(wanted.as_str()) && py.exists() {
        eprintln!(
            "python-tuf baseline: using the virtualenv {}",
            venv.display()
        );
        return Ok(py);
    }
    if !py.exists() {
        eprintln!(
            "python-tuf baseline: creating a virtualenv: python3 -m venv {}",
            venv.display()
        );
        if let Some(parent) = venv.parent() {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    eprintln!(
        "python-tuf baseline: {} -m pip install {}",
        py.display(),
        REQUIREMENTS.join(" ")
    );
    run(Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(REQUIREMENTS))?;
    std::fs::write(&ready, &wanted).map_err(io_at(&ready))?;
    Ok(py)
}

/// python-tuf's version as `py` imports it (cryptography must import too).
fn tuf_version(py: &Path) -> Result<String> {
    let out = Command::new(py)
        .args([
            "-c",
            "import cryptography, securesystemslib, tuf; print(tuf.__version__)",
        ])
        .output()
        .map_err(io_at(py))?;
    if !out.status.success() {
        return Err(failure(
            py,
            format!(
                "cannot import tuf and cryptography: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn run(cmd: &mut Command) -> Result<()> {
    let program = PathBuf::from(cmd.get_program());
    let out = cmd.output().map_err(io_at(&program))?;
    if out.status.success() {
        return Ok(());
    }
    Err(failure(
        &program,
        format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// An error about running `program`, reported as "PROGRAM: what went wrong".
pub fn failure(program: &Path, what: String) -> Error {
    Error::Io {
        path: program.to_owned(),
        source: std::io::Error::other(what),
    }
}
