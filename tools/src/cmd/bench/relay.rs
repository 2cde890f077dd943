//! `ferry bench relay`: a target cached by the gateway relay, served to a client over
//! loopback, against nginx (Debian's `nginx-light`, started here on 127.0.0.1) serving the
//! same file in the same run. Prints each throughput and the ratio relay / nginx (goal ≥ 0.9).
//!
//! Setup: an Image repository server (`ferry repo serve`'s code, in this process) holds the
//! file; the relay (in this process, as `ferry relay serve` runs it) fetches it once into its
//! cache; then the same client reads it `--rounds` times from each server, alternating, and
//! the median of each is compared.

use super::report::{median, ratio};
use crate::error::{io_at, Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAME: &str = "big.bin";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  ferry bench relay                 # 1 GiB, 5 rounds each\n  ferry bench relay --size 256MiB --rounds 3 --json\n\nNeeds nginx (Debian: apt-get install nginx-light)."
)]
pub struct Args {
    /// Target size (bytes, or with KiB/MiB/GiB).
    #[arg(long, default_value = "1GiB")]
    size: String,
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// The nginx binary.
    #[arg(long, default_value = "nginx")]
    nginx: PathBuf,
    #[arg(long)]
    json: bool,
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_at("127.0.0.1:0"))?;
    Ok(l.local_addr().map_err(io_at("127.0.0.1:0"))?.port())
}

fn start_nginx(bin: &Path, dir: &Path, root: &Path) -> Result<(Nginx, u16)> {
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    let text = format!(
        "daemon off;\nworker_processes 1;\npid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
           client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n\
           fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n\
           server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
        pid = dir.join("nginx.pid").display(),
        err = dir.join("nginx.err").display(),
        tmp = dir.display(),
        root = root.display(),
    );
    std::fs::write(&conf, text).map_err(io_at(&conf))?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            Error::Bench(format!(
                "cannot start {}: {e}; expected nginx (Debian: apt-get install nginx-light)",
                bin.display()
            ))
        })?;
    let nginx = Nginx(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(Error::Bench(format!(
                "nginx did not listen on 127.0.0.1:{port} within 10 s (see {})",
                dir.join("nginx.err").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((nginx, port))
}

/// Read `url` to the end; the time and the byte count.
fn read_all(http: &reqwest::blocking::Client, url: &str) -> Result<(Duration, u64)> {
    let start = Instant::now();
    let mut r = http
        .get(url)
        .send()
        .map_err(|e| Error::Bench(format!("{url}: {}", ferry_http::with_causes(&e))))?;
    if !r.status().is_success() {
        return Err(Error::Bench(format!("{url} answered {}", r.status())));
    }
    let n = std::io::copy(&mut r, &mut std::io::sink())
        .map_err(|e| Error::Bench(format!("{url}: {e}")))?;
    Ok((start.elapsed(), n))
}

pub fn run(args: Args) -> Result<()> {
    let size = ferry_relay::config::parse_size(&args.size).map_err(Error::Usage)?;
    let tmp = tempfile::tempdir().map_err(io_at(std::env::temp_dir()))?;
    let dir = tmp.path();
    let repo = dir.join("repo");
    let targets = repo.join("targets");
    std::fs::create_dir_all(&targets).map_err(io_at(&targets))?;
    std::fs::create_dir_all(repo.join("metadata")).map_err(io_at(&repo))?;
    let file = targets.join(NAME);
    {
        let mut f = std::fs::File::create(&file).map_err(io_at(&file))?;
        let block: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n]).map_err(io_at(&file))?;
            left -= n as u64;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Bench(format!("cannot start the runtime: {e}")))?;
    // The upstream Image repository, and the relay in front of it.
    let upstream = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(io_at("127.0.0.1:0"))?;
    let up_addr = upstream.local_addr().map_err(io_at("127.0.0.1:0"))?;
    let repo_dir = repo.clone();
    runtime.spawn(ferry_image_repo::serve::serve(
        repo_dir,
        upstream,
        ferry_http::Limits::default(),
        std::future::pending(),
    ));
    let token = dir.join("relay.token");
    std::fs::write(&token, "ferry-relay:bench:0").map_err(io_at(&token))?;
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ncache_dir = \"cache\"\ncache_max = \"{}\"\n[upstream]\n\
             director = \"http://127.0.0.1:9\"\nimage_repo = \"http://{up_addr}\"\ntoken_file = \"relay.token\"\n",
            size * 2
        ),
    )
    .map_err(io_at(&config))?;
    let relay_config = ferry_relay::RelayConfig::load(&config)?;
    let relay = ferry_relay::Relay::open(relay_config, Arc::new(ferry_core::SystemClock))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(io_at("127.0.0.1:0"))?;
    let relay_addr = listener.local_addr().map_err(io_at("127.0.0.1:0"))?;
    runtime.spawn(ferry_relay::serve(relay, listener, std::future::pending()));
    let (_nginx, port) = start_nginx(&args.nginx, dir, &repo)?;

    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| Error::Bench(format!("HTTP client: {e}")))?;
    let relay_url = format!("http://{relay_addr}/targets/{NAME}");
    let nginx_url = format!("http://127.0.0.1:{port}/targets/{NAME}");
    // Into the relay's cache (not measured), and one warm-up read of each.
    for url in [&relay_url, &relay_url, &nginx_url] {
        let (_, n) = read_all(&http, url)?;
        if n != size {
            return Err(Error::Bench(format!("{url}: {n} bytes; expected {size}")));
        }
    }
    let (mut relay_times, mut nginx_times) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds.max(1) {
        relay_times.push(read_all(&http, &relay_url)?.0);
        nginx_times.push(read_all(&http, &nginx_url)?.0);
    }
    let mib = size as f64 / (1 << 20) as f64;
    let (relay_s, nginx_s) = (median(&relay_times), median(&nginx_times));
    let relay_rate = mib / relay_s;
    let nginx_rate = mib / nginx_s;
    let r = ratio(relay_rate, nginx_rate);
    let verdict = if r >= 0.9 { "met" } else { "NOT met" };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "size": size, "rounds": args.rounds,
                "relay_median_seconds": relay_s, "nginx_median_seconds": nginx_s,
                "relay_mib_per_s": relay_rate, "nginx_mib_per_s": nginx_rate,
                "ratio": r, "goal": 0.9, "goal_met": r >= 0.9,
            })
        );
    } else {
        println!(
            "cached target of {mib:.0} MiB over loopback, median of {} rounds each:",
            args.rounds
        );
        println!("  ferry relay: {relay_rate:.0} MiB/s");
        println!(
            "  nginx:       {nginx_rate:.0} MiB/s (baseline, same file, same client, same run)"
        );
        println!("  ratio relay / nginx: {r:.2} (goal >= 0.9: {verdict})");
    }
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
