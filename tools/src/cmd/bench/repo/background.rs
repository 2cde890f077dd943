//! The python side of `ferry bench repo`: runs of bench_repo.py in the background and the JSON
//! they print, and the files handed to them.

use crate::cmd::bench::python;
use crate::error::{io_at, Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(super) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let file = std::fs::File::create(path).map_err(io_at(path))?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, value).map_err(|e| io_at(path)(e.into()))?;
    out.flush().map_err(io_at(path))
}

pub(super) fn seconds_of(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|s| s.is_finite() && *s >= 0.0)
}

pub(super) fn durations(v: &serde_json::Value) -> Option<Vec<Duration>> {
    v.as_array()?
        .iter()
        .map(|s| seconds_of(s).map(Duration::from_secs_f64))
        .collect()
}

pub(super) fn bad_output(py: &Path, out: &serde_json::Value) -> Error {
    python::failure(py, format!("unexpected output from bench_repo.py: {out}"))
}

/// A python run of bench_repo.py; killed if dropped before it finished (on an error).
pub(super) struct Background {
    child: Option<Child>,
}

impl Background {
    pub(super) fn spawn(cmd: &mut Command) -> Result<Background> {
        let program = PathBuf::from(cmd.get_program());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_at(program))?;
        Ok(Background { child: Some(child) })
    }

    /// Wait for it; its stdout's last line is one JSON object.
    pub(super) fn finish(mut self, py: &Path, what: &str) -> Result<serde_json::Value> {
        let child = self
            .child
            .take()
            .ok_or_else(|| python::failure(py, "bench_repo.py is not running".into()))?;
        let out = child.wait_with_output().map_err(io_at(py))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(python::failure(
                py,
                format!(
                    "bench_repo.py {what} failed ({}):\n{stdout}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
            ));
        }
        stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                python::failure(
                    py,
                    format!("bench_repo.py {what} printed no JSON result: {stdout}"),
                )
            })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
