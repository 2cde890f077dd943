//! `ferry repo serve DIR`: serve an Image repository's `metadata/` and `targets/` over HTTP.

use crate::error::Result;
use ferry_image_repo::serve::{self, ServeError};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// After SIGINT/SIGTERM, downloads in flight get this long to finish before the process
/// exits; clients resume the rest with `Range` against the next server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const EXAMPLE: &str = "Examples:
  ferry repo serve ./repo
  ferry repo serve ./repo --listen 0.0.0.0:8080
  ferry repo serve ./repo --listen 127.0.0.1:0     # any free port; the address is printed
  ferry repo serve ./repo --listen 0.0.0.0:8080 --header-read-timeout 10s --connections-per-address 512

Only DIR/metadata/ and DIR/targets/ are served (GET and HEAD, Range, gzip for metadata);
keys/, staging/ and anything else in DIR never are. The first line on stdout is
`serving DIR on http://ADDR`. SIGINT or SIGTERM stops the server.

Limits (the Director's `[http]` section, as flags): a request head, and an idle kept-alive
connection, get --header-read-timeout (30s); a request body --body-timeout (30s) plus 1 s per
--min-body-rate bytes (1024); one client address holds at most --connections-per-address (256)
connections at once.";

/// Serve a repository directory over plain HTTP.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Repository directory (holding metadata/ and targets/).
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How long a client may take over a request head, or sit idle between requests.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    header_read_timeout: Duration,
    /// How long a request body may take, plus 1 s per --min-body-rate bytes received.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    body_timeout: Duration,
    /// Bytes per second a request body must keep up once --body-timeout is used.
    #[arg(long, default_value_t = ferry_http::Limits::DEFAULT.min_body_rate)]
    min_body_rate: u64,
    /// Connections one client address may hold at once.
    #[arg(long, default_value_t = ferry_http::Limits::DEFAULT.connections_per_address)]
    connections_per_address: usize,
}

impl Args {
    fn limits(&self) -> ferry_http::Limits {
        ferry_http::Limits {
            header_read_timeout: self.header_read_timeout,
            body_timeout: self.body_timeout,
            min_body_rate: self.min_body_rate,
            connections_per_address: self.connections_per_address,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    Ok(serve_until_signal(args)?)
}

enum Event {
    Signal,
    Stopped(std::result::Result<(), ServeError>),
}

fn serve_until_signal(args: Args) -> std::result::Result<(), ServeError> {
    let limits = args.limits();
    limits
        .check("ferry repo serve")
        .map_err(ServeError::Limits)?;
    serve::check_repo_dir(&args.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let listener = runtime.block_on(serve::bind(args.listen))?;
    let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
    // A closed stdout must not stop the server, so write errors are ignored here.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "serving {} on http://{addr}", args.dir.display());
    let _ = stdout.flush();
    drop(stdout);

    let (events, received) = mpsc::channel();
    let on_signal = events.clone();
    runtime.spawn(async move {
        loop {
            ferry_http::shutdown_signal().await;
            if on_signal.send(Event::Signal).is_err() {
                return;
            }
        }
    });
    runtime.spawn(async move {
        let result = serve::serve(args.dir, listener, limits, ferry_http::shutdown_signal()).await;
        let _ = events.send(Event::Stopped(result));
    });

    let result = match received.recv() {
        Ok(Event::Stopped(result)) => result,
        Ok(Event::Signal) => {
            tracing::info!("shutting down; waiting up to {SHUTDOWN_GRACE:?} for open downloads");
            wait_for_stop(&received)
        }
        Err(mpsc::RecvError) => Ok(()),
    };
    // Connections still open past the grace period are cut here.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// Waits out the grace period for the server to stop; a second signal ends it at once.
fn wait_for_stop(received: &mpsc::Receiver<Event>) -> std::result::Result<(), ServeError> {
    match received.recv_timeout(SHUTDOWN_GRACE) {
        Ok(Event::Stopped(result)) => result,
        Ok(Event::Signal) | Err(mpsc::RecvTimeoutError::Disconnected) => Ok(()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            tracing::warn!("downloads still open after {SHUTDOWN_GRACE:?}; closing them");
            Ok(())
        }
    }
}
