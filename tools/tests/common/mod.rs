//! Harness for the `ferry tuf-client` tests: a python-tuf repository (tests/fixtures/python/
//! tuf_repo.py) served by `python3 -m http.server`, and every scenario step run through both
//! `ferry tuf-client` and the python-tuf reference client (tests/fixtures/python/ref_client.py).
//!
//! Every client gets its own metadata dir and target dir; they share the repository and server.
//! `FERRY_TUF_CLIENTS=ref` (or `ferry`) runs one client only, e.g. to check the fixtures.
#![allow(dead_code)]

pub mod faketime;
mod server;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

pub use server::{Request, Server};

/// Longest any client run may take (RSA signing in python included).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one tuf_repo.py command may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------------ python

/// The python-tuf virtualenv's python (with pyca/cryptography, see ferry_tests::python).
pub fn python() -> PathBuf {
    ferry_tests::python::python()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/python")
        .join(name)
}

// ------------------------------------------------------------------------------- processes

pub use ferry_tests::process::{run_bounded, Output};

// ------------------------------------------------------------------------------ repository

/// A repository made and changed by tuf_repo.py; served tree under `dir/repo`.
#[derive(Debug)]
pub struct Repo {
    pub dir: PathBuf,
}

impl Repo {
    /// `tuf_repo.py init DIR ARGS...`
    pub fn init(dir: PathBuf, args: &[&str]) -> Repo {
        let repo = Repo { dir };
        repo.tool("init", args);
        repo
    }

    /// `tuf_repo.py CMD DIR ARGS...`; panics if it fails.
    pub fn tool(&self, cmd: &str, args: &[&str]) -> String {
        let out = run_bounded(
            Command::new(python())
                .arg(fixture("tuf_repo.py"))
                .arg(cmd)
                .arg(&self.dir)
                .args(args),
            TOOL_TIMEOUT,
        );
        assert_eq!(out.code, 0, "tuf_repo.py {cmd} {args:?} failed:\n{out}");
        out.stdout
    }

    pub fn served_dir(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// Bytes the server serves at `metadata/NAME` (NAME as on disk, i.e. URL-decoded), or for
    /// "history/V.ROLE.json" a version the repository signed earlier (served or not).
    pub fn metadata(&self, name: &str) -> Vec<u8> {
        let p = match name.strip_prefix("history/") {
            Some(h) => self.dir.join("history").join(h),
            None => self.served_dir().join("metadata").join(name),
        };
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    pub fn trusted_root(&self) -> PathBuf {
        self.served_dir().join("metadata/1.root.json")
    }
}

/// `urllib.parse.quote(s, "")`: every byte but ASCII alphanumerics and `-._~` as %XX.
pub fn quote(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

// --------------------------------------------------------------------------------- clients

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reference,
    Ferry,
}

/// Clients under test: both, unless FERRY_TUF_CLIENTS says otherwise ("ref", "ferry").
pub fn kinds() -> Vec<Kind> {
    match std::env::var("FERRY_TUF_CLIENTS").as_deref() {
        Ok("ref") | Ok("reference") => vec![Kind::Reference],
        Ok("ferry") => vec![Kind::Ferry],
        Ok("ref,ferry") | Ok("") | Err(_) => vec![Kind::Reference, Kind::Ferry],
        Ok(other) => panic!("FERRY_TUF_CLIENTS={other:?}: expected ref, ferry or ref,ferry"),
    }
}

/// One client with its own metadata dir (D) and target dir (TD).
#[derive(Debug)]
pub struct Client {
    pub kind: Kind,
    pub metadata_dir: PathBuf,
    pub target_dir: PathBuf,
}

/// What one client run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: Kind,
    pub out: Output,
    pub requests: Vec<Request>,
}

impl Outcome {
    pub fn code(&self) -> i32 {
        self.out.code
    }

    pub fn fetched(&self, path: &str) -> bool {
        self.requests.iter().any(|r| r.path == path)
    }

    /// Request paths, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.requests.iter().map(|r| r.path.as_str()).collect()
    }

    /// Paths of requests under `prefix` ("metadata/", "targets/").
    pub fn paths_under(&self, prefix: &str) -> Vec<&str> {
        self.paths()
            .into_iter()
            .filter(|p| p.starts_with(prefix))
            .collect()
    }
}

impl Client {
    fn command(&self) -> Command {
        match self.kind {
            Kind::Reference => {
                let mut c = Command::new(python());
                c.arg(fixture("ref_client.py"));
                c
            }
            Kind::Ferry => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
                c.arg("tuf-client");
                c
            }
        }
    }

    pub fn run<I, S>(&self, args: I, env: &[(&str, &OsStr)]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run_bounded(&mut c, CLIENT_TIMEOUT)
    }

    /// *.json files in D (name → bytes); D holds nothing else that matters.
    pub fn metadata(&self) -> BTreeMap<String, Vec<u8>> {
        read_dir(&self.metadata_dir, |n| n.ends_with(".json"))
    }

    /// Every file in TD (name → bytes).
    pub fn targets(&self) -> BTreeMap<String, Vec<u8>> {
        read_dir(&self.target_dir, |_| true)
    }
}

fn read_dir(dir: &Path, keep: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.expect("dir entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if keep(&name) {
            let data = std::fs::read(e.path()).unwrap_or_else(|_| b"<not a file>".to_vec());
            out.insert(name, data);
        }
    }
    out
}

// -------------------------------------------------------------------------------- scenario

/// One repository, its server, and every client under test (initialised with 1.root.json).
#[derive(Debug)]
pub struct Scenario {
    pub repo: Repo,
    pub server: Server,
    pub clients: Vec<Client>,
    pub tmp: TempDir,
}

impl Scenario {
    /// `tuf_repo.py init` with `init_args`, start the server, `init` every client.
    pub fn new(init_args: &[&str]) -> Scenario {
        let tmp = tempfile::Builder::new()
            .prefix("ferry-tuf-client-")
            .tempdir()
            .expect("tempdir");
        let repo = Repo::init(tmp.path().join("repo-work"), init_args);
        let server = Server::start(&repo.served_dir());
        let clients = kinds()
            .into_iter()
            .map(|kind| {
                let base = tmp.path().join(format!("{kind:?}").to_lowercase());
                Client {
                    kind,
                    metadata_dir: base.join("metadata"),
                    target_dir: base.join("targets"),
                }
            })
            .collect();
        let s = Scenario {
            repo,
            server,
            clients,
            tmp,
        };
        for c in &s.clients {
            let mut args = vec![
                "--metadata-dir".into(),
                c.metadata_dir.clone().into_os_string(),
            ];
            args.push("init".into());
            args.push(s.repo.trusted_root().into_os_string());
            let out = c.run(args, &[]);
            assert_eq!(out.code, 0, "{:?} init failed:\n{out}", c.kind);
        }
        s.assert_metadata(&[("root.json", "1.root.json")]);
        s
    }

    /// `tuf_repo.py CMD DIR ARGS...`
    pub fn tool(&self, cmd: &str, args: &[&str]) -> String {
        self.repo.tool(cmd, args)
    }

    /// Runs `refresh` through every client.
    pub fn refresh(&self) -> Vec<Outcome> {
        self.refresh_env(&[])
    }

    pub fn refresh_env(&self, env: &[(&str, &OsStr)]) -> Vec<Outcome> {
        self.each(|_| vec!["refresh".to_string()], env)
    }

    /// Runs `download` of `targets` through every client.
    pub fn download(&self, targets: &[&str]) -> Vec<Outcome> {
        self.each(
            |c| {
                let mut a = Vec::new();
                for t in targets {
                    a.push("--target-name".to_string());
                    a.push(t.to_string());
                }
                a.push("--target-dir".into());
                a.push(c.target_dir.display().to_string());
                a.push("--target-base-url".into());
                a.push(self.server.targets_url());
                a.push("download".into());
                a
            },
            &[],
        )
    }

    fn each(&self, args: impl Fn(&Client) -> Vec<String>, env: &[(&str, &OsStr)]) -> Vec<Outcome> {
        self.clients
            .iter()
            .map(|c| {
                let mut a = vec![
                    "--metadata-url".to_string(),
                    self.server.metadata_url(),
                    "--metadata-dir".to_string(),
                    c.metadata_dir.display().to_string(),
                ];
                a.extend(args(c));
                let from = self.server.mark();
                let out = c.run(&a, env);
                let to = self.server.mark();
                Outcome {
                    kind: c.kind,
                    out,
                    requests: self.server.requests(from, to),
                }
            })
            .collect()
    }

    /// Every client exited with `code`; where both ran, they also agree with each other on
    /// exit status, D and TD.
    pub fn expect(&self, outcomes: &[Outcome], code: i32, what: &str) {
        for o in outcomes {
            assert_eq!(
                o.code(),
                code,
                "{what}: {:?} client exited {} (expected {code})\nrequests: {:?}\n{}",
                o.kind,
                o.code(),
                o.paths(),
                o.out
            );
        }
        self.assert_clients_agree(what);
    }

    /// D and TD are identical across clients.
    pub fn assert_clients_agree(&self, what: &str) {
        let Some((first, rest)) = self.clients.split_first() else {
            return;
        };
        for c in rest {
            let (a, b) = (first.metadata(), c.metadata());
            assert_eq!(
                names(&a),
                names(&b),
                "{what}: metadata dirs differ ({:?} vs {:?})",
                first.kind,
                c.kind
            );
            for (name, data) in &a {
                assert!(
                    b[name] == *data,
                    "{what}: {name} differs ({:?} vs {:?})",
                    first.kind,
                    c.kind
                );
            }
            let (a, b) = (first.targets(), c.targets());
            assert_eq!(
                names(&a),
                names(&b),
                "{what}: target dirs differ ({:?} vs {:?})",
                first.kind,
                c.kind
            );
            for (name, data) in &a {
                assert!(
                    b[name] == *data,
                    "{what}: target {name} differs ({:?} vs {:?})",
                    first.kind,
                    c.kind
                );
            }
        }
    }

    /// Every client's D holds exactly these *.json files, each byte-equal to the served file
    /// named beside it (a name under repo/metadata/).
    pub fn assert_metadata(&self, expected: &[(&str, &str)]) {
        for c in &self.clients {
            let have = c.metadata();
            let want: Vec<String> = expected.iter().map(|(d, _)| d.to_string()).collect();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            assert_eq!(
                names(&have),
                want_sorted,
                "{:?}: *.json files in the metadata dir",
                c.kind
            );
            for (d, served) in expected {
                assert!(
                    have[*d] == self.repo.metadata(served),
                    "{:?}: {d} in the metadata dir is not the served {served}",
                    c.kind
                );
            }
        }
    }

    /// Every client's D/`name` is byte-equal to the served metadata/`served`.
    pub fn assert_metadata_file(&self, name: &str, served: &str) {
        for c in &self.clients {
            let have = c.metadata();
            assert!(
                have.get(name) == Some(&self.repo.metadata(served)),
                "{:?}: {name} in the metadata dir is not the served {served}",
                c.kind
            );
        }
    }

    /// Every client's TD holds exactly these files with these contents.
    pub fn assert_targets(&self, expected: &[(&str, &str)]) {
        for c in &self.clients {
            let have = c.targets();
            let want: BTreeMap<String, Vec<u8>> = expected
                .iter()
                .map(|(n, d)| (n.to_string(), d.as_bytes().to_vec()))
                .collect();
            assert_eq!(
                have.iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect::<Vec<_>>(),
                want.iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect::<Vec<_>>(),
                "{:?}: files in the target dir",
                c.kind
            );
        }
    }

    /// Snapshot of every client's D, to check later that a refused update left it alone.
    pub fn metadata_snapshot(&self) -> Vec<BTreeMap<String, Vec<u8>>> {
        self.clients.iter().map(Client::metadata).collect()
    }

    pub fn assert_metadata_unchanged(&self, before: &[BTreeMap<String, Vec<u8>>], what: &str) {
        for (c, before) in self.clients.iter().zip(before) {
            let now = c.metadata();
            assert_eq!(
                names(&now),
                names(before),
                "{what}: {:?} metadata files changed",
                c.kind
            );
            for (name, data) in before {
                assert!(now[name] == *data, "{what}: {:?} rewrote {name}", c.kind);
            }
        }
    }
}

fn names<V>(m: &BTreeMap<String, V>) -> Vec<String> {
    m.keys().cloned().collect()
}

/// The four top-level files after a full refresh: each is the served unversioned copy.
pub const TOP_LEVEL: [(&str, &str); 4] = [
    ("root.json", "root.json"),
    ("timestamp.json", "timestamp.json"),
    ("snapshot.json", "snapshot.json"),
    ("targets.json", "targets.json"),
];
