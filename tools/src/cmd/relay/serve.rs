//! `ferry relay serve --config relay.toml`: run the relay until SIGINT or SIGTERM.

use crate::error::{Error, Result};
use ferry_relay::{Relay, RelayConfig};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

const EXAMPLE: &str = "Example:
  ferry admin relay add yard-7 --out /etc/ferry/relay.token     # on the backend side
  ferry relay serve --config /etc/ferry/relay.toml

relay.toml:
  listen = \"0.0.0.0:9400\"
  cache_dir = \"/var/lib/ferry-relay\"
  cache_max = \"50GiB\"
  [upstream]
  director = \"https://director.example:8443\"
  image_repo = \"https://images.example\"
  token_file = \"relay.token\"

Vehicles point [director] url and [image_repo] url at http://RELAY:9400 and change nothing else.
The first line on stdout is `relay serving on http://ADDR`.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let config = RelayConfig::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let relay = Relay::open(config.clone(), Arc::new(ferry_core::SystemClock))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(config.listen))
        .map_err(|e| {
            Error::Usage(format!(
                "cannot listen on {}: {e}; expected a free local address",
                config.listen
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot read the listening address: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "relay serving on http://{addr}");
    let _ = stdout.flush();
    drop(stdout);
    tracing::info!(%addr, director = %config.upstream.director, image_repo = %config.upstream.image_repo, "relay serving");
    runtime
        .block_on(ferry_relay::serve(
            relay,
            listener,
            ferry_http::shutdown_signal(),
        ))
        .map_err(|e| Error::Usage(format!("relay on {addr} stopped: {e}")))?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(())
}
