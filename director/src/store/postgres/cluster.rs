//! A throwaway PostgreSQL server in a temporary directory, for the tests and for
//! `ferry bench director --database postgres`: `initdb` then `postgres` listening on
//! 127.0.0.1 on a free port, run as the `postgres` user when this process is root (PostgreSQL
//! refuses to run as root). Uses Debian's `postgresql` package (binaries on PATH or under
//! `/usr/lib/postgresql/*/bin`) and `psql` to create databases.
//!
//! The server is stopped when the [`TempCluster`] is dropped; a watcher shell started with it
//! also stops it and removes its directory once this process is gone, so a test binary that
//! keeps one in a static (never dropped) leaves nothing running behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running throwaway server.
#[derive(Debug)]
pub struct TempCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    durable: bool,
    watcher: Option<Child>,
}

/// The directory holding `initdb`: on PATH, else the newest Debian version's.
fn postgres_bin() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL: initdb is not on PATH and /usr/lib/postgresql: {e}; expected Debian's postgresql package (apt-get install postgresql)"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().ok_or_else(|| {
        "no PostgreSQL: no initdb under /usr/lib/postgresql/*/bin; expected Debian's postgresql package".to_owned()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

impl TempCluster {
    /// Start a server; `durable` keeps PostgreSQL's fsyncs (for benchmarks), tests turn them
    /// off. Takes about a second.
    pub fn start(durable: bool) -> Result<TempCluster, String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let bin = postgres_bin()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "ferry-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut cluster = TempCluster {
            dir,
            bin,
            port: free_port()?,
            as_postgres,
            durable,
            watcher: None,
        };
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cluster.dir))?;
        }
        let data = cluster.dir.join("data");
        run(cluster.command("initdb").arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
        cluster.launch()?;
        Ok(cluster)
    }

    /// Run the server (with its watcher) on the initialised data directory.
    fn launch(&mut self) -> Result<(), String> {
        let data = self.dir.join("data");
        let mut settings = vec![
            "listen_addresses=127.0.0.1".to_owned(),
            format!("port={}", self.port),
            format!("unix_socket_directories={}", self.dir.display()),
            "max_connections=300".to_owned(),
        ];
        if !self.durable {
            settings.extend(
                [
                    "fsync=off",
                    "synchronous_commit=off",
                    "full_page_writes=off",
                ]
                .map(String::from),
            );
        }
        let postgres = self.bin.join("postgres");
        let mut line = format!("'{}' -D '{}'", postgres.display(), data.display());
        for s in &settings {
            line.push_str(&format!(" -c '{s}'"));
        }
        // The watcher: runs the server, and once this process is gone (checked each second)
        // stops it and removes the directory. A server stopped by [`TempCluster::stop`]
        // leaves the directory for [`TempCluster::restart`].
        let script = format!(
            "rm -f '{dir}/log'; {line} >'{dir}/log' 2>&1 & pg=$!
             while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 1; done
             if [ ! -d /proc/{parent} ]; then kill -INT $pg 2>/dev/null; wait $pg; rm -rf '{dir}'; fi",
            dir = self.dir.display(),
            parent = std::process::id()
        );
        let watcher = self
            .command_path(Path::new("/bin/sh"))
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start postgres: {e}"))?;
        self.watcher = Some(watcher);
        self.wait_ready()
    }

    /// Stop the server (fast shutdown: clients are disconnected), keeping its data.
    pub fn stop(&mut self) -> Result<(), String> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "fast", "-w"]))?;
        if let Some(mut w) = self.watcher.take() {
            let _ = w.wait();
        }
        Ok(())
    }

    /// Start the stopped server again, on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        self.launch()
    }

    fn command(&self, tool: &str) -> Command {
        self.command_path(&self.bin.join(tool))
    }

    fn command_path(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Ready: the server said so in its log, and its port takes a connection.
            let said = std::fs::read_to_string(self.dir.join("log"))
                .is_ok_and(|l| l.contains("ready to accept connections"));
            let ok = said && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                return Err(format!(
                    "postgres did not accept connections on 127.0.0.1:{} within 60 s; its log: {log}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "fast", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut w) = self.watcher.take() {
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Create database `name` on the server `admin_url` names (any database of it) with psql;
/// returns the new database's URL.
pub fn create_database(admin_url: &str, name: &str) -> Result<String, String> {
    let config: tokio_postgres::Config = admin_url
        .parse()
        .map_err(|e| format!("{}: {e}", super::redacted(admin_url)))?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("database name {name:?}: expected [a-z0-9_]"));
    }
    run(Command::new("psql")
        .arg(admin_url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {name}")))?;
    let mut url = admin_url.to_owned();
    if let Some(db) = config.get_dbname() {
        if let Some(pos) = url.rfind(&format!("/{db}")) {
            url.replace_range(pos + 1..pos + 1 + db.len(), name);
            return Ok(url);
        }
    }
    Err(format!(
        "{}: expected a postgres://.../dbname URL",
        super::redacted(admin_url)
    ))
}

/// The server the tests use: `FERRY_TEST_POSTGRES_URL` (a URL of any database of it) if set,
/// else one throwaway [`TempCluster`] per test process. `Err` says why there is none.
fn test_server() -> Result<String, String> {
    static SERVER: OnceLock<Result<(Option<TempCluster>, String), String>> = OnceLock::new();
    let got = SERVER.get_or_init(|| match std::env::var("FERRY_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Ok((None, url)),
        _ => TempCluster::start(false).map(|c| {
            let url = c.url("postgres");
            (Some(c), url)
        }),
    });
    got.as_ref()
        .map(|(_, url)| url.clone())
        .map_err(Clone::clone)
}

/// A fresh, empty database for one test (`hint` names it), or `None` after printing why no
/// server could be had. With `FERRY_REQUIRE_POSTGRES=1` (CI) that is a panic instead: a run
/// that skipped the PostgreSQL tests would prove nothing about them.
pub fn test_database(hint: &str) -> Option<String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        hint.bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| b.to_ascii_lowercase() as char)
            .take(30)
            .collect::<String>()
    );
    let made = test_server().and_then(|server| create_database(&server, &name));
    match made {
        Ok(url) => Some(url),
        Err(why) if std::env::var("FERRY_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("PostgreSQL is required (FERRY_REQUIRE_POSTGRES=1) and none could be had: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED the PostgreSQL part of {hint}: {why}");
            None
        }
    }
}
