//! `ferry`: the command-line tool for key ceremonies, repositories, the TUF client and more.
//! Each subcommand is one module under `cmd/` with an `Args` struct and a `run()`.

mod cmd;
mod error;
mod keyfile;
mod progress;
mod world;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc. The Director runs in this binary, and its check-in path
/// allocates at every step (JSON trees, hyper) on a blocking pool of a hundred threads; under
/// `ferry bench director` glibc's malloc and free took about 16% of its CPU. Its secure mode
/// (the `hardened-alloc` feature) took another ~8% of the Director's CPU per check-in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    // A child of `ferry demo` exits with its parent (see world::procs).
    world::procs::exit_with_parent_if_asked();
    if !cli.runs_daemon() {
        init_logging();
    }
    match cmd::run(cli) {
        Ok(code) => code,
        Err(error::Error::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr through tracing; `RUST_LOG` picks the level (default: warnings).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only on a terminal: a daemon's log in a file or the journal stays
        // greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
