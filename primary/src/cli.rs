//! `ferry-primary --config primary.toml {run|check|status|offline}`: the vehicle's Primary ECU.
//! Its `main` lives here, in the library, so the `ferry` tool can run it as a subcommand.

use crate::offline::watch::Watcher;
use crate::{run_cycle, run_offline, status, Config, OfflineOptions};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

const EXAMPLE: &str = "\
Examples:
  ferry-primary --config primary.toml check          # one cycle; non-zero exit on failure
  ferry-primary --config primary.toml check --json   # the cycle's report as JSON
  ferry-primary --config primary.toml run            # poll every poll_interval
  ferry-primary --config primary.toml status --json  # each ECU's image, provides, last result
  ferry-primary --config primary.toml offline --bundle /run/media/ferry/workshop
                                                     # install a PURE-2 bundle (dir or .tar)

Example primary.toml (relative paths are relative to the file):

  vin = \"WVW1\"
  data_dir = \"state\"
  poll_interval = \"5m\"
  [director]
  url = \"http://127.0.0.1:8000\"
  root = \"director.root.json\"
  token_file = \"device.token\"      # or ca_cert, cert, key for mutual TLS
  [image_repo]
  url = \"http://127.0.0.1:8080\"
  root = \"image.root.json\"
  [ecu]
  serial = \"ivi-1\"
  hardware_id = \"ivi-a53\"
  key = \"ecu.key.pem\"              # PKCS#8 PEM, mode 0600
  [[secondaries]]
  serial = \"tcu-1\"
  url = \"http://127.0.0.1:9301\"
  [offline]                          # optional: `run` installs bundles that appear here
  source = \"/run/media/ferry\"

Logs go to stderr; RUST_LOG sets the level (default info).";

/// A Ferry Primary ECU: verifies the Director and the Image repository, downloads images,
/// distributes them to the vehicle's ECUs and reports the signed vehicle manifest.
#[derive(Debug, Parser)]
#[command(name = "ferry-primary", version, after_help = EXAMPLE)]
struct Args {
    /// The primary's configuration file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll: one cycle every poll_interval until SIGTERM or SIGINT, which end the loop after
    /// the cycle in progress (a second one exits at once); exit status 0.
    Run,
    /// Run one cycle and exit; non-zero if anything was refused or failed.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Each ECU's installed image, provides and last result.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Install an offline bundle (Uptane PURE-2) from a directory or a .tar, with no network:
    /// verified with the roots this vehicle trusts, installed on every ECU or on none, and a
    /// signed receipt written to BUNDLE/receipts/ (FILE.tar.receipts/ beside a .tar) and kept
    /// for the next online cycle. Non-zero exit if anything was refused or failed.
    Offline {
        /// The bundle: a directory holding .well-known/, or the same tree in a .tar.
        #[arg(long, value_name = "DIR|FILE.tar")]
        bundle: PathBuf,
        #[arg(long)]
        json: bool,
        /// Verify at no earlier than this time (RFC 3339), for an ECU whose clock was reset:
        /// the latest of it, the clock and the last verified time is used, so it can only
        /// refuse more, never revive an expired bundle.
        #[arg(long, value_name = "RFC3339")]
        not_before: Option<String>,
    },
}

/// The daemon's entry point, for its own binary and for `ferry primary` (one executable for
/// the demo): parse `args` (the first is the program name), log to stderr, run.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Args = match ferry_secondary::cli::parse_args(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    ferry_secondary::cli::init_logging();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry-primary: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(&args.config)?;
    let clock = ferry_core::SystemClock;
    match &args.command {
        Command::Check { json } => match run_cycle(&config, &clock) {
            Ok(report) => {
                if *json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!(
                        "{}: {} ECU(s) updated",
                        report.result,
                        report.installed.len()
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                if *json {
                    // The cycle's own report says whether the update was refused or failed.
                    let report = match &e.report {
                        Some(report) => serde_json::to_value(report)?,
                        None => serde_json::json!({ "result": "failed", "detail": e.to_string() }),
                    };
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                eprintln!("ferry-primary: cycle failed: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Run => {
            let wake = signals()?;
            tracing::info!(poll_interval = ?config.poll_interval, "polling");
            // Bundles already there now are ignored until they come back (no boot loop on a
            // stick left in).
            let mut watcher = config.offline.as_ref().map(|o| {
                tracing::info!(source = %o.source.display(), "watching for offline bundles");
                Watcher::start(&o.source)
            });
            loop {
                // A failed cycle is logged and retried at the next poll: a vehicle never
                // stops asking for updates because one cycle failed.
                match run_cycle(&config, &clock) {
                    Ok(report) => tracing::info!(result = %report.result, "cycle done"),
                    Err(e) => tracing::error!(error = %e, "cycle failed"),
                }
                let next = std::time::Instant::now() + config.poll_interval;
                loop {
                    let left = next.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let wait = match &config.offline {
                        Some(o) if watcher.is_some() => left.min(o.scan_interval),
                        _ => left,
                    };
                    match wake.recv_timeout(wait) {
                        Err(mpsc::RecvTimeoutError::Timeout) | Ok(Wake::Scan) => {}
                        Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                            tracing::info!("stopped");
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                    for bundle in watcher.as_mut().map(Watcher::poll).unwrap_or_default() {
                        tracing::info!(bundle = %bundle.display(), "offline bundle inserted");
                        match run_offline(&config, &bundle, &clock, OfflineOptions::default()) {
                            Ok(report) => {
                                tracing::info!(result = %report.result, bundle = %bundle.display(), "offline install done")
                            }
                            Err(e) => {
                                tracing::error!(error = %e, bundle = %bundle.display(), "offline install failed")
                            }
                        }
                    }
                }
            }
        }
        Command::Offline {
            bundle,
            json,
            not_before,
        } => {
            let not_before = match not_before {
                Some(text) => Some(
                    chrono::DateTime::parse_from_rfc3339(text)
                        .map_err(|e| format!("--not-before {text:?}: {e}; expected RFC 3339"))?
                        .with_timezone(&chrono::Utc),
                ),
                None => None,
            };
            let options = OfflineOptions { not_before };
            match run_offline(&config, bundle, &clock, options) {
                Ok(report) => {
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        println!(
                            "{}: {} ECU(s) updated{}",
                            report.result,
                            report.installed.len(),
                            report
                                .receipt
                                .as_deref()
                                .map(|r| format!("; receipt {r}"))
                                .unwrap_or_default()
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    if *json {
                        let report = match &e.report {
                            Some(report) => serde_json::to_value(report)?,
                            None => {
                                serde_json::json!({ "result": "failed", "detail": e.to_string() })
                            }
                        };
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    }
                    eprintln!("ferry-primary: offline install failed: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Status { json } => {
            let s = status::vehicle_status(&config)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                status::print(&s);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What a signal asks of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// SIGTERM or SIGINT: stop after the cycle in progress.
    Stop,
    /// SIGUSR1: look for offline bundles now (a systemd path unit sends it when the media
    /// directory changes).
    Scan,
}

/// A channel that receives [`Wake::Stop`] once SIGTERM or SIGINT arrives, and [`Wake::Scan`]
/// on each SIGUSR1. The signals are registered before this returns, so one sent right after
/// start is not missed. A second SIGTERM or SIGINT exits at once: every install step is
/// journaled, so the next start resumes or rolls back.
fn signals() -> std::io::Result<mpsc::Receiver<Wake>> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int, mut usr1) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::user_defined1())?,
        ))
    })?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = usr1.recv() => {
                        let _ = tx.send(Wake::Scan);
                    }
                }
            }
            tracing::info!("signal received: stopping after the cycle in progress");
            let _ = tx.send(Wake::Stop);
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: exiting without finishing the cycle");
            std::process::exit(1);
        })
    });
    Ok(rx)
}
