//! The workspace's binaries for end-to-end tests. A test crate cannot name another package's
//! binary (`CARGO_BIN_EXE_*` covers only its own), so [`binary`] makes sure they are fresh
//! with one `cargo test --workspace --no-run` per test process and returns a path under
//! [`crate::target_dir`].
//!
//! Why that command and not `cargo build -p PKG --bin NAME`: a per-package build resolves
//! dependency features differently from the workspace test build (dev-dependencies such as
//! tough turn on more of rustls), so it would rebuild reqwest and everything above it, and the
//! next workspace build would rebuild them back. Under `cargo test --workspace` (the README's
//! test command) this is a no-op taking a second; under `cargo test -p ferry-tests` it builds
//! what is stale, so a test never runs an old binary. Cargo has released its build lock by the
//! time tests run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

static BUILT: Once = Once::new();

/// The path of binary `name` of the workspace (package `package`, named in messages).
pub fn binary(package: &str, name: &str) -> PathBuf {
    BUILT.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        let status = Command::new(cargo)
            .current_dir(workspace)
            .args(["test", "--workspace", "--no-run", "--quiet"])
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build the workspace binaries: {e}"));
        assert!(
            status.success(),
            "cargo test --workspace --no-run failed: {status}"
        );
    });
    let path = crate::target_dir().join("debug").join(name);
    assert!(
        path.exists(),
        "{} (package {package}) does not exist after cargo test --workspace --no-run",
        path.display()
    );
    path
}
