//! The timed window: simulated vehicles checking in over HTTP. A check-in is what a primary
//! does each cycle: open a connection, GET timestamp.json, GET targets.json, PUT its manifest,
//! each with the vehicle's device token (see [`super::wire`]). The manifests are signed
//! beforehand (one per planned check-in, each with its own nonce) so the window measures the
//! Director, not the vehicles' signing.
//!
//! Every vehicle takes part, `in_flight` check-ins at a time: a fixed set of workers takes
//! the vehicle that waited longest, checks it in and puts it back at the end of the queue, so
//! no vehicle ever has two check-ins at once and all are served evenly.

use super::wire::{Connection, Request};
use crate::cmd::bench::report::{host_steal, steal_since};
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Name of the vehicles' runtime threads (they live as long as the window, so their CPU time
/// can be read per thread).
const VEHICLE_THREADS: &str = "bench-vehicle";

/// How long after the window's end the last check-ins may take, so a stuck Director fails
/// the bench instead of hanging it.
const STALL: Duration = Duration::from_secs(60);

/// A vehicle as the client side sees it.
#[derive(Debug)]
pub struct Sim {
    pub vin: String,
    timestamp: Request,
    targets: Request,
    /// Pre-signed manifest uploads, the next one last.
    manifests: Vec<Request>,
    /// Manifests the Director acknowledged with a 2xx.
    pub acknowledged: u64,
}

impl Sim {
    /// `manifests` in the order they are to be sent.
    pub fn new(addr: SocketAddr, vin: &str, token: &str, manifests: Vec<Vec<u8>>) -> Sim {
        let base = format!("/api/v1/vehicles/{vin}");
        let get =
            |file: &str| Request::new("GET", &format!("{base}/metadata/{file}"), addr, token, b"");
        let put = format!("{base}/manifest");
        Sim {
            vin: vin.to_owned(),
            timestamp: get("timestamp.json"),
            targets: get("targets.json"),
            manifests: manifests
                .iter()
                .rev()
                .map(|body| Request::new("PUT", &put, addr, token, body))
                .collect(),
            acknowledged: 0,
        }
    }
}

/// What the window measured.
#[derive(Debug)]
pub struct Window {
    /// Check-ins whose three requests all succeeded.
    pub check_ins: u64,
    /// Latency of each successful check-in (all three requests), sorted.
    pub latencies: Vec<Duration>,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// From the first check-in started to the last one finished.
    pub elapsed: Duration,
    /// Whether a vehicle used up its pre-signed manifests, ending the window early.
    pub ran_out: bool,
    /// CPU time of the whole process (Director and vehicles) during the window, where the OS
    /// tells it: shows whether the cores were saturated, or shared with other work.
    pub cpu: Option<Duration>,
    /// The part of [`Window::cpu`] spent by the simulated vehicles (their runtime's threads).
    pub vehicles_cpu: Option<Duration>,
    /// CPU time the host gave other machines during the window, over all cores.
    pub steal: Option<Duration>,
    /// The vehicles, with how many manifests each had acknowledged.
    pub vehicles: Vec<Sim>,
}

/// State the workers share.
struct Shared {
    queue: Mutex<VecDeque<Sim>>,
    deadline: Instant,
    stop: AtomicBool,
    ran_out: AtomicBool,
    done: AtomicU64,
}

impl Shared {
    fn take(&self) -> Option<Sim> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    fn put_back(&self, sim: Sim) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(sim);
    }
}

#[derive(Debug, Default)]
struct WorkerStats {
    latencies: Vec<Duration>,
    failed: u64,
    first_failure: Option<String>,
    finished: Option<Instant>,
}

async fn check_in(
    addr: SocketAddr,
    sim: &Sim,
    manifest: &Request,
) -> std::result::Result<(), String> {
    let mut connection = Connection::open(addr).await?;
    connection
        .send(&sim.timestamp, "GET timestamp.json")
        .await?;
    connection.send(&sim.targets, "GET targets.json").await?;
    connection.send(manifest, "PUT manifest").await
}

async fn worker(addr: SocketAddr, shared: Arc<Shared>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    while !shared.stop.load(Ordering::Relaxed) && Instant::now() < shared.deadline {
        let Some(mut sim) = shared.take() else {
            break;
        };
        let Some(manifest) = sim.manifests.pop() else {
            shared.ran_out.store(true, Ordering::Relaxed);
            shared.stop.store(true, Ordering::Relaxed);
            shared.put_back(sim);
            break;
        };
        let start = Instant::now();
        match check_in(addr, &sim, &manifest).await {
            Ok(()) => {
                stats.latencies.push(start.elapsed());
                sim.acknowledged += 1;
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed += 1;
                stats
                    .first_failure
                    .get_or_insert_with(|| format!("check-in of {}: {e}", sim.vin));
            }
        }
        shared.put_back(sim);
    }
    stats.finished = Some(Instant::now());
    stats
}

/// Check the vehicles in for `duration` with `in_flight` check-ins at a time, on a client
/// runtime of `threads` threads. `progress` is called about ten times a second with the time
/// elapsed and the check-ins done so far.
pub fn run(
    addr: SocketAddr,
    vehicles: Vec<Sim>,
    in_flight: usize,
    duration: Duration,
    threads: usize,
    progress: impl Fn(Duration, u64),
) -> Result<Window> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(VEHICLE_THREADS)
        .enable_all()
        .build()
        .map_err(|e| Error::Bench(format!("client runtime check failed: {e}")))?;
    let in_flight = in_flight.clamp(1, vehicles.len().max(1));
    let cpu_before = process_cpu();
    let vehicles_before = threads_cpu(VEHICLE_THREADS);
    let steal_before = host_steal();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        queue: Mutex::new(vehicles.into()),
        deadline: start + duration,
        stop: AtomicBool::new(false),
        ran_out: AtomicBool::new(false),
        done: AtomicU64::new(0),
    });
    let workers: Vec<_> = (0..in_flight)
        .map(|_| runtime.spawn(worker(addr, shared.clone())))
        .collect();
    while !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        progress(start.elapsed(), shared.done.load(Ordering::Relaxed));
        if start.elapsed() > duration + STALL {
            // Dropping the runtime cancels the stuck check-ins.
            return Err(Error::Bench(format!(
                "check-in check failed: check-ins still running {} s after the window ended",
                STALL.as_secs()
            )));
        }
    }
    let mut window = Window {
        check_ins: 0,
        latencies: Vec::new(),
        failed: 0,
        first_failure: None,
        elapsed: Duration::ZERO,
        ran_out: shared.ran_out.load(Ordering::Relaxed),
        cpu: process_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before)),
        vehicles_cpu: threads_cpu(VEHICLE_THREADS)
            .zip(vehicles_before)
            .map(|(after, before)| after.saturating_sub(before)),
        steal: steal_since(steal_before),
        vehicles: Vec::new(),
    };
    for w in workers {
        let stats = runtime
            .block_on(w)
            .map_err(|e| Error::Bench(format!("check-in worker check failed: {e}")))?;
        window.latencies.extend(stats.latencies);
        window.failed += stats.failed;
        if window.first_failure.is_none() {
            window.first_failure = stats.first_failure;
        }
        if let Some(finished) = stats.finished {
            window.elapsed = window.elapsed.max(finished - start);
        }
    }
    window.latencies.sort();
    window.check_ins = window.latencies.len() as u64;
    drop(runtime);
    window.vehicles = Arc::try_unwrap(shared)
        .map_err(|_| Error::Bench("check-in queue check failed: a worker is still running".into()))?
        .queue
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into();
    Ok(window)
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (Linux; `None`
/// elsewhere).
fn process_cpu() -> Option<Duration> {
    Some(stat_cpu(&std::fs::read_to_string("/proc/self/stat").ok()?)?.1)
}

/// User + system CPU time so far of this process's live threads named `name`.
fn threads_cpu(name: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        if let Some((comm, cpu)) = stat_cpu(&stat) {
            if comm == name {
                total += cpu;
            }
        }
    }
    Some(total)
}

/// The command name and user + system CPU time in a `/proc/.../stat` line. Clock ticks are
/// 1/100 s on every Linux the bench targets (`getconf CLK_TCK`).
fn stat_cpu(stat: &str) -> Option<(&str, Duration)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let (_, comm) = head.split_once('(')?;
    // Fields after the command name (which may hold spaces) start with the state, field 3;
    // utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, Duration::from_millis((utime + stime) * 10)))
}
