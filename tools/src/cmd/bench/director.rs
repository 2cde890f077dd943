//! `ferry bench director`: check-ins per second of simulated vehicles against an in-process
//! Director over HTTP on loopback, as a ratio to the crypto ceiling measured in the same run.
//!
//! The Director is the real one: the axum server of `ferry_director::http` on 127.0.0.1:0 on
//! its own multi-thread runtime, over a SQLite database in a temporary directory opened with
//! the Director's own settings (WAL, `--durability`), or with `--database postgres` over
//! PostgreSQL (a throwaway server the bench starts, fsync on, or the server a URL names), after
//! SQLite was measured the same way in the same run: the report ends with the ratio. The vehicles run on a second runtime, with a lean HTTP/1.1 client (see `wire`)
//! so they take as little as possible of the cores the Director is measured on.
//!
//! What is timed is the Director's side of a check-in. A vehicle's own work (its ECUs signing
//! their reports, the primary signing the manifest) is done before the timed window: every
//! check-in needs a fresh nonce, so one manifest is pre-signed per planned check-in. The plan
//! covers what the crypto ceiling would allow for the whole window (the Director cannot check
//! in faster than it can verify), so the window never runs dry; should it anyway, it ends
//! early and the report says so.

mod ceiling;
mod check_ins;
mod fleet;
mod results;
mod wire;

use super::report::{counter, say, secs, spinner, Phases};
use crate::error::{Error, Result};
use ceiling::Ceiling;
use check_ins::Sim;
use ferry_core::TrustedSet;
use ferry_core::{Clock, SystemClock};
use ferry_director::http::{serve, AppState, Limits};
use ferry_director::image_repo::TargetSource;
use ferry_director::model::Verdict;
use ferry_director::vehicle_metadata::Lifetimes;
use fleet::{Backend, Director, Vehicle};
use indicatif::ProgressBar;
use results::Results;
use std::net::SocketAddr;
use std::time::Duration;

const EXAMPLE: &str = "Examples:
  ferry bench director                           # 2,000 vehicles, 10 s, 64 check-ins in flight
  ferry bench director --vehicles 10000 --duration 30 --in-flight 128
  ferry bench director --vehicles 20 --duration 1 --json
  ferry bench director --database postgres       # SQLite, then PostgreSQL: ratio to SQLite
  ferry bench director --database postgres://ferry@db:5432/postgres

A check-in: GET timestamp.json, GET targets.json, PUT a manifest of 3 ECU reports (ed25519),
each with the vehicle's device token, against a Director on 127.0.0.1 with its real SQLite
settings (or PostgreSQL: --database). Manifests are signed before the timed window (the vehicles' signing is not the
Director's cost). The crypto ceiling is how many check-ins/s the Director's per-check-in
signature verifications alone allow, timed on every core in the same run; the ratio is
measured / ceiling. Goal: >= 2,000 check-ins/s (a 1,000,000-vehicle fleet polling every
30 min needs 556/s).";

/// Check-ins per second the Director must sustain on this bench.
pub const GOAL: f64 = 2000.0;

/// How long the crypto ceiling is measured.
const CEILING_WINDOW: Duration = Duration::from_secs(1);

/// Slack on the pre-signed manifests over what the crypto ceiling allows.
const PLAN_SLACK: f64 = 1.1;

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Simulated vehicles, each with a primary and two secondary ECUs. Enough by default that
    /// a vehicle's check-ins are seconds apart even at twice the goal, as with a real fleet
    /// polling every few minutes.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    vehicles: u64,
    /// Length of the timed window in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Check-ins in flight at once; the vehicles take turns, longest-waiting first.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    in_flight: u64,
    /// How the Director's SQLite commits: full (the default, as `director.toml`'s; an fsync
    /// per commit) or normal (fsync at checkpoints only).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,
    /// Where the Director keeps its data: sqlite (the default), postgres (a throwaway
    /// PostgreSQL server the bench starts, fsync on) or a postgres:// URL of a server (a fresh
    /// database is created on it). With PostgreSQL the bench first measures SQLite in the same
    /// run and prints the ratio to it.
    #[arg(long, default_value = "sqlite", value_name = "sqlite|postgres|URL")]
    database: String,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `--durability`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    Full,
    Normal,
}

impl From<DurabilityArg> for ferry_director::Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Full => ferry_director::Durability::Full,
            DurabilityArg::Normal => ferry_director::Durability::Normal,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let count = usize::try_from(args.vehicles)
        .map_err(|_| Error::Usage(format!("--vehicles {} is too many", args.vehicles)))?;
    let in_flight = usize::try_from(args.in_flight)
        .map_err(|_| Error::Usage(format!("--in-flight {} is too many", args.in_flight)))?;
    let duration = Duration::from_secs(args.duration);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let sqlite = Backend::Sqlite(ferry_director::Durability::from(args.durability));
    let postgres = match args.database.as_str() {
        "sqlite" => None,
        "postgres" | "postgresql" => Some(Backend::Postgres(None)),
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Some(Backend::Postgres(Some(url.to_owned())))
        }
        other => {
            return Err(Error::Usage(format!(
                "--database {other:?}: expected sqlite, postgres or a postgres:// URL"
            )))
        }
    };
    let run_on = |backend| measure(backend, count, in_flight, duration, cores);
    let Some(postgres) = postgres else {
        let results = run_on(sqlite)?;
        if args.json {
            super::report::print_json(&results.to_json())?;
        } else {
            results.print();
        }
        return results.check();
    };
    // The baseline first, in the same run, on the same cores.
    let base = run_on(sqlite)?;
    base.check()?;
    let pg = run_on(postgres)?;
    let ratio = super::report::ratio(pg.rate(), base.rate());
    if args.json {
        super::report::print_json(&serde_json::json!({
            "sqlite": base.to_json(),
            "postgres": pg.to_json(),
            "ratio_to_sqlite": ratio,
        }))?;
    } else {
        base.print();
        println!();
        pg.print();
        println!();
        println!(
            "postgres/sqlite {ratio:>8.2}  check-ins/s on PostgreSQL ({:.0}) / on SQLite ({:.0}), \
             measured in this run (goal >= 0.5)",
            pg.rate(),
            base.rate()
        );
    }
    pg.check()
}

/// One timed window against a Director on `backend`, with its own fleet and crypto ceiling.
fn measure(
    backend: Backend,
    count: usize,
    in_flight: usize,
    duration: Duration,
    cores: usize,
) -> Result<Results> {
    let bar = spinner("creating the Director database");
    let mut setup = Phases::start();
    let director = Director::create(SystemClock.now(), &backend)?;
    let vehicles = register(&director, count, cores)?;
    setup.lap("register");
    bar.set_message(format!(
        "crypto ceiling: verifying manifest signatures on {cores} core(s)"
    ));
    let first = vehicles
        .first()
        .ok_or_else(|| Error::Usage("--vehicles must be at least 1".into()))?;
    let ceiling = ceiling::measure(first, CEILING_WINDOW)?;
    setup.lap("crypto_ceiling");
    let planned = planned_check_ins(&ceiling, duration, count);
    bar.finish_and_clear();
    let manifests = presign(&vehicles, planned, cores)?;
    setup.lap("presign");

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("bench-director")
        .enable_all()
        .build()
        .map_err(|e| Error::Bench(format!("Director runtime check failed: {e}")))?;
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| Error::Bench(format!("listening on 127.0.0.1:0 failed: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Bench(format!("listener address check failed: {e}")))?;
    let state = AppState::new(
        director.store.clone(),
        director.keys.clone(),
        Lifetimes::default(),
        std::sync::Arc::new(NoImages),
        std::sync::Arc::new(SystemClock),
    )
    // Each simulated vehicle checks in far more often than a real one: no manifest rate.
    .with_manifest_policy(ferry_director::manifests::ManifestPolicy::DEFAULT.without_rate());
    // The whole simulated fleet connects from one address: no per-address cap here.
    let limits = Limits {
        connections_per_address: usize::MAX,
        ..Limits::default()
    };
    server.spawn(serve(listener, state, limits, std::future::pending()));
    let sims: Vec<Sim> = vehicles
        .iter()
        .zip(manifests)
        .map(|(v, m)| Sim::new(addr, &v.vin, &v.token, m))
        .collect();
    setup.lap("start_director");

    let bar = window_bar(duration);
    let window = check_ins::run(addr, sims, in_flight, duration, cores, |elapsed, done| {
        bar.set_position(elapsed.as_millis().try_into().unwrap_or(u64::MAX));
        bar.set_message(format!("{done} check-ins"));
    })?;
    bar.finish_and_clear();

    // Untimed: nothing acknowledged was lost, and what the Director serves verifies.
    let spin = spinner("checking every acknowledged manifest is stored");
    let mut lost = 0;
    for sim in &window.vehicles {
        let stored = director
            .store
            .count_manifests(&sim.vin, Some(Verdict::Accepted))?;
        lost += sim.acknowledged.saturating_sub(stored);
    }
    spin.set_message("verifying a vehicle's metadata from the director root");
    verify_metadata(addr, &director.root, first)?;
    server.shutdown_timeout(Duration::from_secs(5));
    spin.finish_and_clear();

    Ok(Results {
        backend,
        vehicles: count,
        in_flight: in_flight.min(count),
        duration,
        cores,
        setup,
        ceiling,
        planned,
        window,
        lost,
    })
}

/// The bench assigns nothing, so the Director needs no Image repository: every lookup is
/// refused.
#[derive(Debug)]
struct NoImages;

impl TargetSource for NoImages {
    fn target(&self, name: &str) -> ferry_director::Result<ferry_core::metadata::TargetFile> {
        Err(ferry_director::Error::TargetNotPublished {
            target: name.to_owned(),
        })
    }
}

/// Manifests to pre-sign per vehicle: what the crypto ceiling would allow over the whole
/// window, with some slack, spread over the fleet (at least two each).
fn planned_check_ins(ceiling: &Ceiling, duration: Duration, vehicles: usize) -> usize {
    let total = ceiling.check_ins_per_second() * duration.as_secs_f64() * PLAN_SLACK;
    ((total / vehicles.max(1) as f64).ceil() as usize).max(2)
}

/// Register `count` vehicles on `threads` threads (key generation and metadata signing run
/// in parallel; the store serialises the writes).
fn register(director: &Director, count: usize, threads: usize) -> Result<Vec<Vehicle>> {
    let bar = counter(count as u64, "registering vehicles");
    let now = SystemClock.now();
    let chunks = parallel(count, threads, |i| {
        let v = director.register(i, now);
        bar.inc(1);
        v
    })?;
    bar.finish_and_clear();
    say(&bar, &format!("registered {count} vehicles"));
    Ok(chunks)
}

/// Pre-sign `per_vehicle` manifests for each vehicle, on `threads` threads.
fn presign(vehicles: &[Vehicle], per_vehicle: usize, threads: usize) -> Result<Vec<Vec<Vec<u8>>>> {
    let total = (vehicles.len() * per_vehicle) as u64;
    let bar = counter(total, "pre-signing manifests (not timed)");
    let start = std::time::Instant::now();
    let now = SystemClock.now();
    let out = parallel(vehicles.len(), threads, |i| {
        let v = &vehicles[i];
        let manifests = (0..per_vehicle)
            .map(|n| v.manifest(n, now))
            .collect::<Result<Vec<_>>>();
        bar.inc(per_vehicle as u64);
        manifests
    })?;
    bar.finish_and_clear();
    say(
        &bar,
        &format!(
            "pre-signed {total} manifests ({per_vehicle} per vehicle) in {}",
            secs(start.elapsed())
        ),
    );
    Ok(out)
}

/// `f(0..count)` on `threads` threads, results in index order.
fn parallel<T: Send>(
    count: usize,
    threads: usize,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let threads = threads.clamp(1, count.max(1));
    let per = count.div_ceil(threads);
    let parts: Vec<Result<Vec<T>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                scope.spawn(move || (t * per..((t + 1) * per).min(count)).map(f).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Bench(
                        "set-up check failed: a worker thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(count);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

fn window_bar(duration: Duration) -> ProgressBar {
    let bar = ProgressBar::new(duration.as_millis().try_into().unwrap_or(u64::MAX));
    bar.set_style(
        indicatif::ProgressStyle::with_template("timed window [{bar:30}] {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Fetch `vehicle`'s timestamp, snapshot and targets as a primary would and verify them
/// from the director root; the targets must name the vehicle.
fn verify_metadata(addr: SocketAddr, root: &[u8], vehicle: &Vehicle) -> Result<()> {
    let failed =
        |what: String| Error::Bench(format!("metadata check of {} failed: {what}", vehicle.vin));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| failed(format!("HTTP client: {e}")))?;
    let fetch = |file: &str| -> Result<Vec<u8>> {
        let url = format!(
            "http://{addr}/api/v1/vehicles/{}/metadata/{file}",
            vehicle.vin
        );
        let response = client
            .get(url)
            .bearer_auth(&vehicle.token)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.bytes())
            .map_err(|e| failed(format!("GET {file}: {e}")))?;
        Ok(response.to_vec())
    };
    let mut set = TrustedSet::new(root, SystemClock.now())?;
    set.update_timestamp(&fetch("timestamp.json")?)?;
    set.update_snapshot(&fetch("snapshot.json")?, false)?;
    let targets = set.update_targets(&fetch("targets.json")?, "targets", "root")?;
    if targets.extra.get("custom").and_then(|c| c.get("vin")) != Some(&vehicle.vin.clone().into()) {
        return Err(failed("the targets do not name the vehicle".into()));
    }
    Ok(())
}
