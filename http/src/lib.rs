//! The HTTP server plumbing every Ferry daemon shares (the Director, `ferry repo serve`, the
//! Secondary), so a limit is set and tested in one place:
//!
//! - [`Limits`]: how long a client may take over a request head (and sit idle between
//!   requests), how slowly it may send a body, and how many connections one address may hold;
//!   read from each daemon's `[http]` TOML section.
//! - [`serve`] / [`accept_loop`] + [`serve_http1`]: HTTP/1.1 on a task per connection, under
//!   those limits, each request carrying the caller's address (`ConnectInfo<SocketAddr>`), with
//!   a graceful shutdown that lets requests in progress finish.
//! - [`read_body`]: a request body read whole up to a cap, refused in Ferry's words (413 naming
//!   the limit, 408 naming the rate) rather than axum's; handlers call it after they have
//!   authenticated the caller, so an unauthenticated upload is never read.
//! - [`shutdown_signal`]: SIGINT or SIGTERM.
//! - [`tls`]: mutual TLS for any of them ([`tls::ServerTls`], [`tls::serve_tls`]).

mod accept;
mod body;
mod limits;
mod shutdown;
pub mod tls;

pub use accept::{accept_loop, serve, serve_http1};
pub use body::{read_body, BodyRefusal, SlowBody};
pub use limits::Limits;
pub use shutdown::shutdown_signal;

/// `error` and every cause under it, each once: an HTTP client's own message ("error sending
/// request for url") hides what went wrong ("Connection refused", a certificate refused).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}
