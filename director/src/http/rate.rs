//! How many manifests a vehicle may send: a token bucket per VIN, in memory (a restart forgets
//! it, which only ever lets a vehicle send more for one window), on the handlers' clock.
//! Refused with 429 and `Retry-After`, naming the limit, before the body is read.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Manifests one vehicle may send per minute; also the burst it may send at once.
#[derive(Debug)]
pub struct ManifestRate {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// Buckets untouched this long are full again and can be forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(120);

impl ManifestRate {
    /// `per_minute` of 0 means no limit.
    pub fn new(per_minute: u32) -> Self {
        ManifestRate {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Take one manifest of `vin` at `now`: `Err(wait)` when its bucket is empty, `wait` being
    /// how long until the next one is allowed.
    pub fn take(&self, vin: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // A fleet's worth of idle buckets: drop the full ones (they are the default).
            buckets.retain(|_, b| elapsed(b.at, now) < FORGET_AFTER);
        }
        let bucket = buckets.entry(vin.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refill = elapsed(bucket.at, now).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        // A clock that steps back refills nothing and moves the bucket's time back with it.
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(missing / per_second))
        }
    }
}

/// Time from `from` to `to`; zero when the clock went back.
fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vehicle_gets_its_burst_then_one_per_interval_and_others_are_apart() {
        let rate = ManifestRate::new(6);
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("time");
        for _ in 0..6 {
            rate.take("A", t0).expect("within the burst");
        }
        let wait = rate.take("A", t0).expect_err("burst used up");
        assert_eq!(wait, Duration::from_secs(10), "6 per minute: one per 10 s");
        rate.take("B", t0)
            .expect("another vehicle has its own bucket");
        rate.take("A", t0 + chrono::Duration::seconds(10))
            .expect("one more after 10 s");
        assert!(rate.take("A", t0 + chrono::Duration::seconds(10)).is_err());
        let unlimited = ManifestRate::new(0);
        for _ in 0..1000 {
            unlimited.take("A", t0).expect("no limit");
        }
    }
}
