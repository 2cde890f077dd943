//! `ferry bench director`'s results: throughput and latency, the crypto ceiling and the ratio
//! to it, the goal verdict; as the `--json` object and as the printed report.

use super::ceiling::{Ceiling, SIGNINGS_PER_CHECK_IN, VERIFICATIONS_PER_CHECK_IN};
use super::check_ins::Window;
use super::fleet::ECUS;
use super::GOAL;
use crate::cmd::bench::report::{group, percentile, ratio, secs, steal_share, Phases};
use crate::error::{Error, Result};
use serde_json::json;
use std::time::Duration;

/// Requests per check-in: GET timestamp.json, GET targets.json, PUT manifest.
const REQUESTS_PER_CHECK_IN: u64 = 3;

#[derive(Debug)]
pub struct Results {
    /// Where the Director kept its data.
    pub backend: super::fleet::Backend,
    pub vehicles: usize,
    pub in_flight: usize,
    /// The window asked for.
    pub duration: Duration,
    pub cores: usize,
    pub setup: Phases,
    pub ceiling: Ceiling,
    /// Manifests pre-signed per vehicle.
    pub planned: usize,
    pub window: Window,
    /// Acknowledged manifests missing from the database.
    pub lost: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Results {
    pub fn rate(&self) -> f64 {
        ratio(
            self.window.check_ins as f64,
            self.window.elapsed.as_secs_f64(),
        )
    }

    fn ratio(&self) -> f64 {
        ratio(self.rate(), self.ceiling.check_ins_per_second())
    }

    /// Cores the process kept busy during the window (Director and vehicles together).
    fn cores_used(&self) -> Option<f64> {
        let cpu = self.window.cpu?;
        Some(ratio(cpu.as_secs_f64(), self.window.elapsed.as_secs_f64()))
    }

    /// The share of the cores' time in the window the host gave to other machines.
    fn steal_share(&self) -> Option<f64> {
        Some(steal_share(
            self.window.steal?,
            self.window.elapsed,
            self.cores,
        ))
    }

    /// The Director's CPU time in the window: the process's minus the vehicles'.
    fn director_cpu(&self) -> Option<Duration> {
        Some(self.window.cpu?.saturating_sub(self.window.vehicles_cpu?))
    }

    /// `cpu` per check-in.
    fn per_check_in(&self, cpu: Option<Duration>) -> Option<Duration> {
        let n = u32::try_from(self.window.check_ins)
            .ok()
            .filter(|n| *n > 0)?;
        Some(cpu? / n)
    }

    fn p(&self, p: f64) -> Duration {
        percentile(&self.window.latencies, p)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let rate = self.rate();
        json!({
            "vehicles": self.vehicles,
            "ecus_per_vehicle": ECUS,
            "in_flight": self.in_flight,
            "cores": self.cores,
            "keytype": "ed25519",
            "database": self.backend.describe(),
            "durability": match &self.backend {
                super::fleet::Backend::Sqlite(d) => Some(d.as_str()),
                super::fleet::Backend::Postgres(_) => None,
            },
            "requests_per_check_in": REQUESTS_PER_CHECK_IN,
            "duration_seconds": self.duration.as_secs_f64(),
            "window_seconds": self.window.elapsed.as_secs_f64(),
            "ran_out_of_manifests": self.window.ran_out,
            "manifests_per_vehicle": self.planned,
            "check_ins": self.window.check_ins,
            "failed": self.window.failed,
            "first_failure": self.window.first_failure,
            "lost": self.lost,
            "check_ins_per_second": rate,
            "latency_ms": {
                "p50": ms(self.p(50.0)),
                "p99": ms(self.p(99.0)),
                "max": ms(self.p(100.0)),
            },
            "cpu": {
                "cores_used": self.cores_used(),
                "ms_per_check_in": self.per_check_in(self.window.cpu).map(ms),
                "director_ms_per_check_in": self.per_check_in(self.director_cpu()).map(ms),
                "vehicles_ms_per_check_in": self.per_check_in(self.window.vehicles_cpu).map(ms),
                "host_steal_share": self.steal_share(),
            },
            "crypto_ceiling": {
                "verifications_per_check_in": VERIFICATIONS_PER_CHECK_IN,
                "signings_per_check_in": SIGNINGS_PER_CHECK_IN,
                "threads": self.ceiling.threads,
                "verification_us": self.ceiling.per_verification().as_secs_f64() * 1e6,
                "check_ins_per_second": self.ceiling.check_ins_per_second(),
            },
            "ratio": self.ratio(),
            "goal": {
                "check_ins_per_second": GOAL,
                "ok": rate >= GOAL,
            },
            "setup_seconds": self.setup.to_json(),
        })
    }

    pub fn print(&self) {
        let rate = self.rate();
        let w = &self.window;
        println!(
            "ferry bench director: {} vehicles x {ECUS} ECUs (ed25519), {} check-ins in flight, \
             Director and vehicles on this machine's {} core(s), {}",
            group(self.vehicles as u64),
            self.in_flight,
            self.cores,
            self.backend.describe(),
        );
        println!("setup (untimed): {}", self.setup.describe());
        println!();
        println!(
            "check-ins     {:>10}  in {} ({} requests each: GET timestamp, GET targets, PUT manifest)",
            group(w.check_ins),
            secs(w.elapsed),
            REQUESTS_PER_CHECK_IN
        );
        println!("throughput    {rate:>10.0}  check-ins/s");
        println!(
            "latency       {:>10}  p50; p99 {}, max {} (all three requests)",
            secs(self.p(50.0)),
            secs(self.p(99.0)),
            secs(self.p(100.0))
        );
        println!(
            "ceiling       {:>10.0}  check-ins/s: {} signature verifications + {} signings per \
             check-in, {} each, on {} thread(s)",
            self.ceiling.check_ins_per_second(),
            VERIFICATIONS_PER_CHECK_IN,
            SIGNINGS_PER_CHECK_IN,
            secs(self.ceiling.per_verification()),
            self.ceiling.threads
        );
        println!("ratio         {:>10.3}  measured / ceiling", self.ratio());
        if let (Some(cores), Some(director), Some(vehicles)) = (
            self.cores_used(),
            self.per_check_in(self.director_cpu()),
            self.per_check_in(self.window.vehicles_cpu),
        ) {
            println!(
                "cpu           {cores:>10.2}  cores busy; per check-in {} in the Director, {} in \
                 the simulated vehicles",
                secs(director),
                secs(vehicles)
            );
        }
        if let Some(steal) = self.steal_share() {
            println!(
                "host steal    {:>9.1}%  of the cores' time went to other machines on this host \
                 during the window",
                steal * 100.0
            );
        }
        println!(
            "goal          {:>10}  >= {} check-ins/s (a 1,000,000-vehicle fleet polling every \
             30 min needs 556/s)",
            if rate >= GOAL { "PASS" } else { "MISS" },
            group(GOAL as u64)
        );
        println!(
            "lost          {:>10}  acknowledged manifests missing from the database",
            self.lost
        );
        if w.failed > 0 {
            println!(
                "failed        {:>10}  check-ins; first: {}",
                w.failed,
                w.first_failure.as_deref().unwrap_or("?")
            );
        }
        if w.ran_out {
            println!(
                "note: the vehicles used up their {} pre-signed manifests each; the window \
                 ended early",
                self.planned
            );
        }
    }

    /// A bench that failed check-ins or lost manifests measured nothing worth reporting.
    pub fn check(&self) -> Result<()> {
        if let Some(first) = &self.window.first_failure {
            return Err(Error::Bench(format!(
                "check-in check failed: {} check-in(s) failed; first: {first}",
                self.window.failed
            )));
        }
        if self.lost > 0 {
            return Err(Error::Bench(format!(
                "durability check failed: {} acknowledged manifest(s) missing from the database",
                self.lost
            )));
        }
        Ok(())
    }
}
