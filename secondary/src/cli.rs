//! `ferry-secondary --config secondary.toml`: one Secondary ECU serving the Primary over HTTP.
//! Its `main` lives here, in the library, so the `ferry` tool can run it as a subcommand.

use crate::http::{serve, serve_tls, AppState};
use crate::{Config, Ecu};
use clap::Parser;
use ferry_core::{Clock, SystemClock};
use ferry_http::shutdown_signal;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const EXAMPLE: &str = "\
Example secondary.toml (relative paths are relative to the file):

  vin = \"WVW1234567890\"          # Director metadata for another VIN is refused
  serial = \"ivi-1\"
  hardware_id = \"ivi-a53\"
  key = \"ecu.key.pem\"               # PKCS#8 PEM, mode 0600
  listen = \"127.0.0.1:9301\"
  data_dir = \"state\"
  verification = \"full\"             # or \"partial\" with director_targets_key
  director_root = \"director.root.json\"
  image_root = \"image.root.json\"
  apps_dir = \"apps\"

The first line on stdout is {\"listening\":\"ADDR\"}. Logs go to stderr; RUST_LOG sets the level
(default info). SIGTERM or SIGINT stops it after requests in flight.

On a btrfs-snapshot ECU ([snapshot]), going back to any kept snapshot:

  ferry-secondary --config secondary.toml snapshots
  ferry-secondary --config secondary.toml rollback --to 3

With confirm = \"app\" ([container] or [app]), the application confirms its new version:

  ferry-secondary --config secondary.toml confirm container web --version 2.1";

/// A Ferry Secondary ECU: verifies metadata from the Primary (full or partial verification),
/// receives and installs images, and signs version reports.
#[derive(Debug, Parser)]
#[command(name = "ferry-secondary", version, after_help = EXAMPLE)]
struct Args {
    /// The ECU's configuration file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Without a command: serve the Primary.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the kept snapshots of the snapshot domain, with the target each holds.
    #[command(after_help = "Example:\n  ferry-secondary --config secondary.toml snapshots --json")]
    Snapshots {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a kept snapshot the one that boots (at once when the reboot is simulated; at the
    /// next boot otherwise) and report the ECU as running its image. Refused while an install
    /// is in flight or an upgrade is on trial, and for a snapshot without a record.
    #[command(after_help = "Example:\n  ferry-secondary --config secondary.toml rollback --to 3")]
    Rollback {
        /// The snapshot number (see `snapshots`).
        #[arg(long, value_name = "N")]
        to: u64,
        #[arg(long)]
        json: bool,
    },
    /// Confirm, as the application, the new version of DOMAIN NAME that waits for it
    /// (`confirm = "app"`): the running daemon commits it (deleting the replaced image beyond
    /// `keep_previous`). Refused, changing nothing, for another domain, name or version, when
    /// nothing waits, and once the window has closed (the daemon rolls it back).
    #[command(
        after_help = "Example:\n  ferry-secondary --config secondary.toml confirm container web --version 2.1 --json"
    )]
    Confirm {
        /// The domain: container or app.
        domain: String,
        /// The container or app name (the target's custom name, else its file name up to the
        /// first dot).
        name: String,
        /// Refuse unless the waiting install is this version (its custom version).
        #[arg(long, value_name = "V")]
        version: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// The daemon's entry point, for its own binary and for `ferry secondary` (one executable for
/// the demo): parse `args` (the first is the program name), log to stderr, run.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Args = match parse_args(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    init_logging();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-secondary: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parse a daemon's `args` (the first is the program name). `--help` and `--version` print
/// and give exit status 0; a usage error prints and gives 2. Shared with `ferry-primary`.
pub fn parse_args<A, I, T>(args: I) -> Result<A, ExitCode>
where
    A: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    A::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Log to stderr at `RUST_LOG` (default info). Shared with `ferry-primary`.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colour codes only on a terminal: logs redirected to files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A host program (`ferry`) may have set its own subscriber already: keep that one.
        .try_init();
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(&args.config)?;
    match &args.command {
        None => serve_ecu(config),
        Some(Command::Snapshots { json }) => {
            let kept = crate::ecu::kept_snapshots(&config)?;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&kept)?)?;
            } else {
                writeln!(
                    out,
                    "{:>8}  {:<8}  {:<10}  TARGET",
                    "SNAPSHOT", "VERSION", "STATE"
                )?;
                for k in kept {
                    let state = match (k.booted, k.default) {
                        (true, true) => "running",
                        (true, false) => "booted",
                        (false, true) => "next boot",
                        (false, false) => "",
                    };
                    writeln!(
                        out,
                        "{:>8}  {:<8}  {:<10}  {}",
                        k.number,
                        k.version.as_deref().unwrap_or("-"),
                        state,
                        k.target.as_deref().unwrap_or("(no record)")
                    )?;
                }
            }
            Ok(())
        }
        Some(Command::Confirm {
            domain,
            name,
            version,
            json,
        }) => {
            let done = crate::ecu::confirm_install(
                &config,
                domain,
                name,
                version.as_deref(),
                SystemClock.now(),
            )?;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{}", serde_json::to_string(&done)?)?;
            } else {
                writeln!(
                    out,
                    "confirmed {} {} ({}); the daemon commits it",
                    done.domain, done.name, done.target
                )?;
            }
            Ok(())
        }
        Some(Command::Rollback { to, json }) => {
            let image = crate::ecu::rollback_snapshot(&config, *to)?;
            let mut out = std::io::stdout().lock();
            if *json {
                let answer = serde_json::json!({ "snapshot": to, "target": image.target });
                writeln!(out, "{answer}")?;
            } else {
                writeln!(out, "snapshot {to} ({}) boots next", image.target)?;
            }
            Ok(())
        }
    }
}

fn serve_ecu(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let listen = config.listen;
    let max_metadata = config.max_metadata_bytes;
    let limits = config.http;
    let tls = config.server_tls()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let confirm_api = match &config.confirm_api {
        Some(api) => Some((
            api.listen,
            crate::http::confirm_api::router(
                Arc::new(config.clone()),
                &crate::http::confirm_api::load_token(api)?,
                clock.clone(),
            ),
        )),
        None => None,
    };
    let mut ecu = Ecu::open_at(config, clock.now())?;
    ecu.use_clock(clock.clone());
    let info = ecu.info();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listen = {listen}: cannot bind: {e}"))?;
        let addr = listener.local_addr()?;
        let mut started = serde_json::json!({ "listening": addr.to_string() });
        if let Some((at, router)) = confirm_api {
            let confirm_listener = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| format!("[confirm_api] listen = {at}: cannot bind: {e}"))?;
            let confirm_addr = confirm_listener.local_addr()?;
            started["confirm_api"] = confirm_addr.to_string().into();
            tracing::info!(addr = %confirm_addr, "confirm API serving");
            tokio::spawn(async move {
                if let Err(e) =
                    ferry_http::serve(confirm_listener, router, limits, shutdown_signal()).await
                {
                    tracing::error!(error = %e, "the confirm API stopped");
                }
            });
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{started}")?;
        out.flush()?;
        drop(out);
        tracing::info!(%addr, serial = %info.serial, verification = info.verification, "secondary serving");
        let state = AppState::new(ecu, clock);
        tokio::spawn(settle_confirmations(state.clone()));
        match tls {
            Some(tls) => {
                serve_tls(listener, state, max_metadata, limits, tls, shutdown_signal()).await?
            }
            None => serve(listener, state, max_metadata, limits, shutdown_signal()).await?,
        }
        tracing::info!("secondary stopped");
        Ok(())
    })
}

/// How often the daemon looks for a confirmation (or the end of its window).
const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Commit an install its application confirmed, or roll it back at its deadline
/// (`confirm = "app"`), looking every [`SETTLE_EVERY`]; ends with the runtime.
async fn settle_confirmations(state: AppState) {
    let mut tick = tokio::time::interval(SETTLE_EVERY);
    loop {
        tick.tick().await;
        let ecu = state.ecu.clone();
        let now = state.clock.now();
        let settled = tokio::task::spawn_blocking(move || match ecu.lock() {
            Ok(mut ecu) => ecu.settle(now),
            Err(_) => Ok(false),
        })
        .await;
        if let Ok(Err(e)) = settled {
            tracing::error!(error = %e, "cannot settle the install waiting for confirmation");
        }
    }
}
