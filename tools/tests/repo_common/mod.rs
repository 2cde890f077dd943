//! Harness for the `ferry repo` interop and refusal tests: repositories built only through the
//! `ferry repo` CLI, served by `ferry repo serve` on 127.0.0.1 port 0, and read by python-tuf's
//! ngclient over HTTP (tests/fixtures/python/ngclient_http.py).
//!
//! Every process runs under a deadline and is killed when it passes it, so no test can hang:
//! CLI commands and client runs through [`run_bounded`], the server through [`Server`], which
//! also kills its process on drop (a failing assertion unwinds through the drop).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// Longest one `ferry` command may take (a debug build hashing a few small files).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one ngclient run may take (python start-up, venv import, a handful of requests).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest `ferry repo serve` may take to print its address.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Socket timeouts of the test's own HTTP requests.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------------------- processes

/// Exit status and output of a finished process.
pub use ferry_tests::process::{run_bounded, Output};

pub fn ferry_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferry")
}

/// `ferry ARGS...`, bounded.
pub fn ferry<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_bounded(Command::new(ferry_bin()).args(args), CLI_TIMEOUT)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/python")
        .join(name)
}

pub use ferry_tests::sha256_hex;

// ------------------------------------------------------------------------------ repository

/// A repository made with `ferry repo init` in a temporary directory, plus room for the
/// source files, keys and clients of one test.
#[derive(Debug)]
pub struct Repo {
    pub tmp: TempDir,
    /// The repository directory (what `ferry repo serve` serves).
    pub dir: PathBuf,
}

impl Repo {
    /// `ferry repo init DIR ARGS...`
    pub fn init(args: &[&str]) -> Repo {
        let tmp = tempfile::Builder::new()
            .prefix("ferry-repo-test-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().join("repo");
        let repo = Repo { tmp, dir };
        let mut a = vec![
            "repo".into(),
            "init".into(),
            repo.dir.clone().into_os_string(),
        ];
        a.extend(args.iter().map(|s| (*s).into()));
        let out = ferry(&a);
        assert_eq!(out.code, 0, "ferry repo init failed:\n{out}");
        repo
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `ferry repo CMD DIR ARGS...`, whatever its outcome.
    pub fn try_cmd(&self, cmd: &str, args: &[&str]) -> Output {
        let mut a: Vec<std::ffi::OsString> =
            vec!["repo".into(), cmd.into(), self.dir.clone().into_os_string()];
        a.extend(args.iter().map(|s| (*s).into()));
        ferry(&a)
    }

    /// `ferry repo CMD DIR ARGS...`; panics unless it succeeds.
    pub fn cmd(&self, cmd: &str, args: &[&str]) -> Output {
        let out = self.try_cmd(cmd, args);
        assert_eq!(out.code, 0, "ferry repo {cmd} {args:?} failed:\n{out}");
        out
    }

    /// `ferry repo CMD DIR ARGS...`; panics unless it fails, and unless stderr names `check`
    /// (the error enum's "... check failed" wording).
    pub fn refused(&self, cmd: &str, args: &[&str], check: &str) -> Output {
        let out = self.try_cmd(cmd, args);
        assert_ne!(
            out.code, 0,
            "ferry repo {cmd} {args:?} should have been refused:\n{out}"
        );
        assert!(
            out.stderr.contains(check),
            "ferry repo {cmd} {args:?} was refused, but without naming {check:?}:\n{out}"
        );
        out
    }

    /// Writes `data` to a source file outside the repository (named after `name`).
    pub fn source(&self, name: &str, data: &[u8]) -> PathBuf {
        let dir = self.path("src");
        std::fs::create_dir_all(&dir).expect("create src dir");
        let path = dir.join(name.replace('/', "_"));
        std::fs::write(&path, data).expect("write source file");
        path
    }

    /// `ferry repo add-target DIR SRC --name NAME --hardware-id ivi-a53 EXTRA...`.
    pub fn add_target(&self, name: &str, data: &[u8], extra: &[&str]) -> Output {
        let src = self.source(name, data);
        let src = src.to_str().expect("utf-8 temp path");
        let mut args = vec![src, "--name", name, "--hardware-id", "ivi-a53"];
        args.extend_from_slice(extra);
        self.cmd("add-target", &args)
    }

    /// `ferry repo publish DIR --json`, parsed.
    pub fn publish(&self) -> Value {
        let out = self.cmd("publish", &["--json"]);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("publish --json printed no JSON ({e}):\n{out}"))
    }

    /// `ferry key gen --type ed25519 --out TMP/NAME --insecure-plaintext`.
    pub fn key_gen(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let out = ferry([
            OsStr::new("key"),
            OsStr::new("gen"),
            OsStr::new("--type"),
            OsStr::new("ed25519"),
            OsStr::new("--out"),
            path.as_os_str(),
            OsStr::new("--insecure-plaintext"),
        ]);
        assert_eq!(out.code, 0, "ferry key gen failed:\n{out}");
        path
    }

    /// The SPKI PEM public key of a private key file: what a supplier hands the OEM.
    pub fn public_pem(&self, private: &Path) -> PathBuf {
        let path = private.with_extension("pub.pem");
        let out = run_bounded(
            Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(private)
                .arg("-out")
                .arg(&path),
            CLI_TIMEOUT,
        );
        assert_eq!(out.code, 0, "openssl pkey -pubout failed:\n{out}");
        path
    }

    pub fn metadata(&self, name: &str) -> Vec<u8> {
        let p = self.dir.join("metadata").join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    pub fn metadata_json(&self, name: &str) -> Value {
        serde_json::from_slice(&self.metadata(name)).expect("metadata is JSON")
    }

    /// `signed.version` of a published metadata file.
    pub fn version_of(&self, name: &str) -> u64 {
        self.metadata_json(name)["signed"]["version"]
            .as_u64()
            .expect("version")
    }

    pub fn staged_path(&self, role: &str) -> PathBuf {
        self.dir.join("staging").join(format!("{role}.json"))
    }

    /// Names of the files in DIR/staging (none if it does not exist).
    pub fn staged(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("staging"))
            .map(|rd| {
                rd.map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// A new client that trusts the repository's current `1.root.json` (copied now, so later
    /// rotations cannot change what it was shipped with).
    pub fn client(&self, name: &str) -> Client {
        let base = self.path(&format!("client-{name}"));
        std::fs::create_dir_all(&base).expect("client dir");
        let root = base.join("shipped-1.root.json");
        std::fs::write(&root, self.metadata("1.root.json")).expect("copy 1.root.json");
        Client {
            trusted_root: root,
            metadata_dir: base.join("metadata"),
            download_dir: base.join("downloads"),
        }
    }

    pub fn serve(&self) -> Server {
        Server::start(&self.dir)
    }
}

/// Every file under `dir` (relative path → bytes), skipping the subdirectory names in `skip`.
pub fn tree(dir: &Path, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.expect("dir entry");
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            if skip.contains(&rel.as_str()) {
                continue;
            }
            if e.file_type().expect("file type").is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(base, &path, skip, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// Panics with the names of the files that differ between two [`tree`]s.
pub fn assert_same_tree(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let removed: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    let changed: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        added.is_empty() && removed.is_empty() && changed.is_empty(),
        "{what}: added {added:?}, removed {removed:?}, changed {changed:?}"
    );
}

// ---------------------------------------------------------------------------------- server

/// `ferry repo serve DIR --listen 127.0.0.1:0`, killed on drop.
#[derive(Debug)]
pub struct Server {
    daemon: ferry_tests::daemon::Daemon,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let mut cmd = Command::new(ferry_bin());
        cmd.args(["repo", "serve"])
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"]);
        let daemon = ferry_tests::daemon::Daemon::start(cmd);
        Server {
            addr: daemon.addr,
            daemon,
        }
    }

    pub fn metadata_url(&self) -> String {
        format!("http://{}/metadata/", self.addr)
    }

    pub fn targets_url(&self) -> String {
        format!("http://{}/targets/", self.addr)
    }

    /// `GET /PATH` over HTTP/1.0 (so no chunked body, and no gzip since none is asked for):
    /// status and body.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect_timeout(&self.addr, HTTP_TIMEOUT).expect("connect");
        s.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
        write!(s, "GET /{path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).expect("send request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read response");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head}"));
        (status, raw[split + 4..].to_vec())
    }

    /// The served metadata file NAME, parsed (panics unless 200).
    pub fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET /{path}");
        serde_json::from_slice(&body).expect("served JSON")
    }

    pub fn stderr(&self) -> String {
        self.daemon.stderr()
    }
}

// ---------------------------------------------------------------------------------- client

/// One python-tuf ngclient "device": shipped root, persistent metadata dir, download dir.
#[derive(Debug)]
pub struct Client {
    pub trusted_root: PathBuf,
    pub metadata_dir: PathBuf,
    pub download_dir: PathBuf,
}

/// One target an ngclient run downloaded.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub sha256: String,
    pub length: u64,
    pub path: PathBuf,
    /// The target's `custom` metadata as the client saw it (Uptane fields).
    pub custom: Value,
}

/// What a successful ngclient run reports.
#[derive(Debug, Clone)]
pub struct Updated {
    pub targets: BTreeMap<String, Downloaded>,
    /// Version of each role the client now trusts (root, timestamp, snapshot, targets, ...).
    pub versions: BTreeMap<String, u64>,
    pub out: Output,
}

impl Updated {
    pub fn version(&self, role: &str) -> u64 {
        *self
            .versions
            .get(role)
            .unwrap_or_else(|| panic!("client trusts no {role}: {:?}", self.versions))
    }

    /// Panics unless `name` was downloaded with exactly the bytes `original`.
    pub fn assert_bytes(&self, name: &str, original: &[u8]) {
        let d = self
            .targets
            .get(name)
            .unwrap_or_else(|| panic!("{name} was not downloaded:\n{}", self.out));
        let got = std::fs::read(&d.path).expect("read downloaded file");
        assert!(
            got == original,
            "{name}: downloaded {} bytes differ from the {} original bytes",
            got.len(),
            original.len()
        );
        assert_eq!(d.length, original.len() as u64, "{name}: reported length");
        assert_eq!(d.sha256, sha256_hex(original), "{name}: reported sha256");
    }
}

/// What a refused ngclient run reports.
#[derive(Debug, Clone)]
pub struct Refused {
    /// python exception class, e.g. "BadVersionNumberError".
    pub error: String,
    pub message: String,
    pub out: Output,
}

impl Client {
    /// Runs ngclient_http.py: refresh, then download `names`.
    pub fn run(&self, server: &Server, names: &[&str]) -> Result<Updated, Refused> {
        let out = run_bounded(
            Command::new(ferry_tests::python::python())
                .arg(fixture("ngclient_http.py"))
                .arg(server.metadata_url())
                .arg(server.targets_url())
                .arg(&self.trusted_root)
                .arg(&self.metadata_dir)
                .arg(&self.download_dir)
                .args(names),
            CLIENT_TIMEOUT,
        );
        let json: Option<Value> = out
            .stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok());
        let Some(json) = json else {
            panic!("ngclient_http.py printed no JSON result:\n{out}")
        };
        if out.code != 0 {
            assert!(
                json.get("error").is_some(),
                "ngclient_http.py exited {} without an error report:\n{out}",
                out.code
            );
            return Err(Refused {
                error: json["error"].as_str().unwrap_or_default().to_owned(),
                message: json["message"].as_str().unwrap_or_default().to_owned(),
                out,
            });
        }
        let targets = json["targets"]
            .as_object()
            .expect("targets object")
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    Downloaded {
                        sha256: t["sha256"].as_str().expect("sha256").to_owned(),
                        length: t["length"].as_u64().expect("length"),
                        path: PathBuf::from(t["path"].as_str().expect("path")),
                        custom: t["custom"].clone(),
                    },
                )
            })
            .collect();
        let versions = json["versions"]
            .as_object()
            .expect("versions object")
            .iter()
            .map(|(role, v)| (role.clone(), v.as_u64().expect("version")))
            .collect();
        Ok(Updated {
            targets,
            versions,
            out,
        })
    }

    /// [`Client::run`], panicking (with the server's log) unless it succeeds.
    pub fn update(&self, server: &Server, names: &[&str]) -> Updated {
        self.run(server, names).unwrap_or_else(|r| {
            panic!(
                "ngclient refused: {}: {}\n{}\n--- server stderr\n{}",
                r.error,
                r.message,
                r.out,
                server.stderr()
            )
        })
    }
}
