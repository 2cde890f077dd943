//! Running an installer's helper program (a container runtime hook, a health check, an update
//! module) with its output captured and bounded: a module that prints without end must not
//! fill the ECU's memory, and a failure should still show the last words it wrote.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// Bytes kept of each stream: the head of stdout (where answers such as `Yes` are), the tail
/// of stderr (where the reason for a failure usually is).
pub const KEPT: usize = 64 * 1024;
/// Bytes of the stderr tail quoted in an error message.
const QUOTED: usize = 2048;

/// A finished program.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    /// `exit status: 3`, `signal: 9 (SIGKILL)`.
    pub status: String,
    pub stdout: Vec<u8>,
    pub stderr_tail: Vec<u8>,
}

impl Finished {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The end of stderr, short enough for an error message.
    pub fn stderr_quote(&self) -> String {
        let tail = &self.stderr_tail[self.stderr_tail.len().saturating_sub(QUOTED)..];
        let text = String::from_utf8_lossy(tail);
        let text = text.trim();
        if text.is_empty() {
            "(no stderr)".into()
        } else {
            text.to_owned()
        }
    }

    /// `Ok` on exit status 0, else [`Error::Command`] naming `what` and quoting stderr.
    pub fn require_success(self, what: &str, program: &str) -> Result<Finished> {
        if self.success {
            return Ok(self);
        }
        Err(Error::Command {
            what: what.to_owned(),
            program: program.to_owned(),
            status: self.status.clone(),
            stderr: self.stderr_quote(),
        })
    }
}

/// Run `argv` in `cwd` with `env` added, stdin closed, and wait for it (no time limit: an
/// install may take long, and a hung program is the operator's to see in the journal).
pub fn run(argv: &[String], cwd: Option<&Path>, env: &[(&str, String)]) -> Result<Finished> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::Command {
            what: "command check".into(),
            program: String::new(),
            status: "not started".into(),
            stderr: "the command is empty; expected a program and its arguments".into(),
        });
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().map_err(|e| Error::io(program, e))?;
    let mut stderr = child.stderr.take();
    // Both pipes are drained at once: a program blocked on a full stderr pipe while we wait
    // on stdout would never finish.
    let stderr_reader = std::thread::spawn(move || {
        let mut tail = VecDeque::new();
        if let Some(pipe) = stderr.as_mut() {
            keep_tail(pipe, &mut tail);
        }
        Vec::from(tail)
    });
    let mut stdout = Vec::new();
    if let Some(pipe) = child.stdout.as_mut() {
        keep_head(pipe, &mut stdout);
    }
    let status = child.wait().map_err(|e| Error::io(program, e))?;
    let stderr_tail = stderr_reader.join().unwrap_or_default();
    Ok(Finished {
        success: status.success(),
        status: status.to_string(),
        stdout,
        stderr_tail,
    })
}

/// Keep the first [`KEPT`] bytes, read (and drop) the rest.
fn keep_head(pipe: &mut dyn Read, kept: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        let room = KEPT.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buf[..room]);
    }
}

/// Keep the last [`KEPT`] bytes.
fn keep_tail(pipe: &mut dyn Read, kept: &mut VecDeque<u8>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend(&buf[..n]);
        let excess = kept.len().saturating_sub(KEPT);
        kept.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn output_is_bounded_and_stderr_quoted_from_its_end() {
        // 1 MiB on each stream, then the last words on stderr.
        let done = run(
            &sh("head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; echo last words >&2; exit 4"),
            None,
            &[],
        )
        .unwrap();
        assert!(!done.success);
        assert_eq!(done.stdout.len(), KEPT);
        assert_eq!(done.stderr_tail.len(), KEPT);
        let err = done.require_success("test step", "sh").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("test step failed: sh exit status: 4"),
            "{text}"
        );
        assert!(text.ends_with("last words"), "{text}");
    }

    #[test]
    fn env_and_cwd_reach_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let done = run(
            &sh("printf '%s %s' \"$FERRY_X\" \"$(pwd)\""),
            Some(dir.path()),
            &[("FERRY_X", "seen".into())],
        )
        .unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        assert_eq!(done.stdout_text(), format!("seen {}", canonical.display()));
    }
}
