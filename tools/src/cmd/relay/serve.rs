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
  # mutual TLS toward the Director (`ferry director issue-cert --relay yard-7`, then
  # `ferry admin relay add yard-7 --out relay.token --cert yard-7/cert.pem`):
  # ca_cert = \"fleet-ca.pem\"
  # cert = \"yard-7/cert.pem\"
  # key = \"yard-7/key.pem\"
  # [tls]                       # vehicles over mutual TLS, device certificates of the fleet CA
  # listen = \"0.0.0.0:9443\"
  # ca_cert = \"fleet-ca.pem\"
  # cert = \"relay-server.pem\"
  # key = \"relay-server.key\"

Vehicles point [director] url and [image_repo] url at http://RELAY:9400 (or [director] url at
https://RELAY:9443 with their device certificate) and change nothing else.
The first line on stdout is `relay serving on http://ADDR`; with [tls] the second is
`relay serving mutual TLS on https://ADDR`.";

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
    let vehicle_tls = config
        .tls
        .as_ref()
        .map(ferry_relay::server::vehicle_tls)
        .transpose()?;
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
    let tls = match (&config.tls, vehicle_tls) {
        (Some(t), Some(settings)) => {
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind(t.listen))
                .map_err(|e| {
                    Error::Usage(format!(
                        "cannot listen on {} ([tls] listen): {e}; expected a free local address",
                        t.listen
                    ))
                })?;
            Some((listener, settings))
        }
        _ => None,
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "relay serving on http://{addr}");
    if let Some(tls_addr) = tls.as_ref().and_then(|(l, _)| l.local_addr().ok()) {
        let _ = writeln!(stdout, "relay serving mutual TLS on https://{tls_addr}");
    }
    let _ = stdout.flush();
    drop(stdout);
    tracing::info!(%addr, director = %config.upstream.director, image_repo = %config.upstream.image_repo, "relay serving");
    runtime
        .block_on(ferry_relay::server::serve_with_tls(
            relay,
            listener,
            tls,
            ferry_http::shutdown_signal(),
        ))
        .map_err(|e| Error::Usage(format!("relay on {addr} stopped: {e}")))?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(())
}
