//! Running an installer's helper program (a container runtime hook, a health check, an update
//! module) with its output captured and bounded: a module that prints without end must not
//! fill the ECU's memory, and a failure should still show the last words it wrote. Its time is
//! bounded too: a program that hangs is killed, with everything it started, once its time
//! limit passes (Mender's ModuleTimeoutSeconds), and fails the step, so the update rolls back
//! instead of holding the ECU's updates forever.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bytes kept of each stream: the head of stdout (where answers such as `Yes` are), the tail
/// of stderr (where the reason for a failure usually is).
pub const KEPT: usize = 64 * 1024;
/// Bytes of the stderr tail quoted in an error message.
const QUOTED: usize = 2048;

/// A program's time limit unless configured: Mender's default for ModuleTimeoutSeconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// The time limit a settings section's `timeout_secs` gives (absent: [`DEFAULT_TIMEOUT`]).
pub fn limit(timeout_secs: Option<u64>) -> Duration {
    timeout_secs.map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

/// How often a running program is checked on.
const POLL: Duration = Duration::from_millis(20);

/// How long a program's output is still read after it ended (see [`Drain::take`]).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A finished program.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    /// The exit code, if it exited (not killed by a signal or its time limit).
    pub code: Option<i32>,
    /// `exit status: 3`, `signal: 9 (SIGKILL)`, `killed after 5s (its time limit)`.
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

/// Run `argv` in `cwd` with `env` added, stdin closed, and wait for it at most `limit`; past
/// that it and every process in its process group are killed and it counts as failed.
pub fn run(
    argv: &[String],
    cwd: Option<&Path>,
    env: &[(&str, String)],
    limit: Duration,
) -> Result<Finished> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::Command {
            what: "command check".into(),
            program: String::new(),
            status: "not started".into(),
            stderr: "the command is empty; expected a program and its arguments".into(),
        });
    };
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    run_command(command, program, limit)
}

/// [`run`] for a `command` already built (named `program` in errors): its stdin, stdout,
/// stderr and process group are set here.
pub fn run_command(mut command: Command, program: &str, limit: Duration) -> Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);
    let mut child = command.spawn().map_err(|e| Error::io(program, e))?;
    // Both pipes are drained at once, each on its own thread: a program blocked on a full
    // pipe would never finish, and a hung one must not hold this thread past its limit.
    let stdout = Drain::start(child.stdout.take(), keep_head);
    let stderr = Drain::start(child.stderr.take(), keep_tail);
    let deadline = Instant::now() + limit;
    let (success, code, status) = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::io(program, e))? {
            break (status.success(), status.code(), status.to_string());
        }
        if Instant::now() >= deadline {
            kill_group(&mut child, program);
            break (
                false,
                None,
                format!("killed after {limit:?} (its time limit)"),
            );
        }
        std::thread::sleep(POLL);
    };
    Ok(Finished {
        success,
        code,
        status,
        stdout: stdout.take(),
        stderr_tail: Vec::from(stderr.take()),
    })
}

/// A pipe read to its end on a thread of its own into a buffer shared with the caller.
struct Drain<B> {
    kept: Arc<Mutex<B>>,
    ended: mpsc::Receiver<()>,
}

impl<B: Default + Send + 'static> Drain<B> {
    fn start(pipe: Option<impl Read + Send + 'static>, keep: fn(&mut B, &[u8])) -> Drain<B> {
        let kept = Arc::new(Mutex::new(B::default()));
        let (tx, ended) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    keep(
                        &mut kept.lock().unwrap_or_else(PoisonError::into_inner),
                        &buf[..n],
                    );
                }
                let _ = tx.send(());
            });
        }
        Drain { kept, ended }
    }

    /// What was read, once the pipe ended or [`DRAIN_GRACE`] after the program did: a
    /// descendant still running (a daemon a hook started, or one that left a killed
    /// program's group) may hold the pipe open for ever, and what the program itself wrote
    /// is read by then.
    fn take(self) -> B {
        let _ = self.ended.recv_timeout(DRAIN_GRACE);
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// SIGKILL to `child`'s process group (which it leads), then reap it.
fn kill_group(child: &mut std::process::Child, program: &str) {
    let group = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let killed =
        group.map(|pid| rustix::process::kill_process_group(pid, rustix::process::Signal::KILL));
    if !matches!(killed, Some(Ok(()))) {
        tracing::warn!(
            program,
            "killing the timed-out program's process group failed; killing the program alone"
        );
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Keep the first [`KEPT`] bytes, drop the rest.
fn keep_head(kept: &mut Vec<u8>, chunk: &[u8]) {
    let room = KEPT.saturating_sub(kept.len()).min(chunk.len());
    kept.extend_from_slice(&chunk[..room]);
}

/// Keep the last [`KEPT`] bytes.
fn keep_tail(kept: &mut VecDeque<u8>, chunk: &[u8]) {
    kept.extend(chunk);
    let excess = kept.len().saturating_sub(KEPT);
    kept.drain(..excess);
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
            DEFAULT_TIMEOUT,
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
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        assert_eq!(done.stdout_text(), format!("seen {}", canonical.display()));
    }

    #[test]
    fn a_program_past_its_limit_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let started = Instant::now();
        // A child that sleeps "for ever" and a grandchild in the background that does too,
        // holding the pipes open.
        let done = run(
            &sh(&format!(
                "echo started; echo why >&2; sleep 600 & echo $! > {}; sleep 600",
                pid_file.display()
            )),
            None,
            &[],
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run waited past its limit"
        );
        assert!(!done.success);
        assert!(done.status.contains("its time limit"), "{}", done.status);
        assert_eq!(done.stdout_text(), "started\n");
        let err = done
            .require_success("module step", "sh")
            .unwrap_err()
            .to_string();
        assert!(err.contains("killed after 300ms (its time limit)"), "{err}");
        assert!(err.ends_with("why"), "{err}");
        // The grandchild went with its group.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let proc_dir = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_dir.exists() && !is_zombie(&proc_dir) {
            assert!(
                Instant::now() < deadline,
                "the grandchild {} still runs",
                pid.trim()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_daemon_left_holding_the_pipes_does_not_hold_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("daemon.pid");
        let started = Instant::now();
        let done = run(
            &sh(&format!(
                "sleep 600 & echo $! > {}; echo Yes",
                pid_file.display()
            )),
            None,
            &[],
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        let took = started.elapsed();
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        assert!(took < Duration::from_secs(60), "run waited for the daemon");
        assert!(done.success, "{}", done.status);
        assert_eq!(done.stdout_text(), "Yes\n");
    }

    fn is_zombie(proc_dir: &Path) -> bool {
        std::fs::read_to_string(proc_dir.join("stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    }
}
