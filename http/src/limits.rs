//! What one client may take of a server: time for a request head, rate for a body, connections
//! per address. The `[http]` section of `director.toml` and `secondary.toml`, and the flags of
//! `ferry repo serve`.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The limits a server applies to every connection. Every field has a default, so `[http]`
/// may name only what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// For a whole request head, counted from the moment the server waits for one: on a new
    /// connection, and again after each response on a kept-alive one, so it is also how long an
    /// idle connection is kept. Past it the connection is closed.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// A request body must have arrived within this, plus one second for every
    /// `min_body_rate` bytes received (Apache's `RequestReadTimeout body=…,MinRate=…`): a
    /// large upload at a fair rate always finishes, a trickle is cut off (408).
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// Bytes per second a body must keep up, on average, once `body_timeout` is used up.
    pub min_body_rate: u64,
    /// Connections one client address may hold open at once; one more is closed as soon as
    /// it is accepted, so one host cannot use up the server's file descriptors.
    pub connections_per_address: usize,
}

impl Limits {
    /// Header and body 30 s each, bodies at least 1 KiB/s after that, 256 connections per
    /// address (vehicles behind a carrier-grade NAT share one address).
    pub const DEFAULT: Limits = Limits {
        header_read_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(30),
        min_body_rate: 1024,
        connections_per_address: 256,
    };

    /// Refuse limits that would refuse every request, naming the setting (`section` is where
    /// they were read, e.g. `[http]`).
    pub fn check(&self, section: &str) -> Result<(), String> {
        let zero = |name: &str, example: &str| {
            Err(format!(
                "{section} {name} is zero; expected a value above zero (e.g. {example}): every request would be refused"
            ))
        };
        if self.header_read_timeout.is_zero() {
            return zero("header_read_timeout", "\"30s\"");
        }
        if self.body_timeout.is_zero() {
            return zero("body_timeout", "\"30s\"");
        }
        if self.min_body_rate == 0 {
            return zero("min_body_rate", "1024");
        }
        if self.connections_per_address == 0 {
            return zero("connections_per_address", "256");
        }
        Ok(())
    }

    /// When a body that has delivered `received` bytes must be complete, counted from its
    /// start.
    pub fn body_deadline(&self, received: u64) -> Duration {
        let earned = Duration::from_secs(received / self.min_body_rate.max(1));
        self.body_timeout.saturating_add(earned)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A duration as humantime writes it ("30s", "2m").
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration: {e}; expected e.g. \"30s\" or \"2m\""
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_names_only_what_it_changes() {
        let limits: Limits = toml::from_str("body_timeout = \"5s\"\nconnections_per_address = 8")
            .expect("valid section");
        assert_eq!(limits.body_timeout, Duration::from_secs(5));
        assert_eq!(limits.connections_per_address, 8);
        assert_eq!(
            limits.header_read_timeout,
            Limits::DEFAULT.header_read_timeout
        );
        let err = toml::from_str::<Limits>("header_timeout = \"5s\"").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field"), "{err}");
        let err = toml::from_str::<Limits>("body_timeout = \"soon\"").expect_err("bad duration");
        assert!(err.to_string().contains("expected e.g. \"30s\""), "{err}");
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let limits = Limits {
            min_body_rate: 0,
            ..Limits::DEFAULT
        };
        let err = limits.check("[http]").expect_err("zero rate");
        assert!(err.contains("[http] min_body_rate is zero"), "{err}");
        Limits::DEFAULT.check("[http]").expect("defaults are valid");
    }

    #[test]
    fn the_body_deadline_grows_with_what_arrived() {
        let limits = Limits::DEFAULT;
        assert_eq!(limits.body_deadline(0), Duration::from_secs(30));
        assert_eq!(limits.body_deadline(10 * 1024), Duration::from_secs(40));
        assert_eq!(
            limits.body_deadline(u64::MAX),
            Duration::from_secs(30 + u64::MAX / 1024)
        );
    }
}
