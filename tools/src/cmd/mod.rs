use crate::error::Result;
use clap::{Parser, Subcommand};

pub mod admin;
pub mod bench;
pub mod demo;
pub mod director;
pub mod expiry_status;
pub mod key;
pub mod proposal;
pub mod relay;
pub mod repo;
pub mod root_changes;
pub mod tuf_client;

/// Ferry: Uptane-secured over-the-air updates.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate and inspect signing keys.
    #[command(subcommand)]
    Key(key::Command),
    /// Key ceremonies: show, sign, check and merge a proposal for an offline role.
    #[command(subcommand)]
    Proposal(proposal::Command),
    /// Build, sign, delegate, rotate, refresh and serve an Image repository.
    #[command(subcommand)]
    Repo(repo::Command),
    /// Call the Director's admin API: vehicles, assignments, status.
    Admin(admin::Args),
    /// Set up, run and operate a Director.
    #[command(subcommand)]
    Director(director::Command),
    /// The gateway relay for segregated networks: serve, status, prefetch.
    #[command(subcommand)]
    Relay(relay::Command),
    /// A plain TUF client (tuf-conformance CLI): init, refresh, download.
    TufClient(tuf_client::Args),
    /// Benchmarks, each printed as a ratio to a baseline measured in the same run.
    #[command(subcommand)]
    Bench(bench::Command),
    /// The whole Uptane story on 127.0.0.1: backend, a three-ECU vehicle, installs, a refusal.
    Demo(demo::Args),
    /// The vehicle's Primary (`ferry-primary`), run from this binary (used by `ferry demo`).
    #[command(hide = true, disable_help_flag = true)]
    Primary {
        /// Passed to ferry-primary unchanged (`ferry primary --help` shows them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// A Secondary ECU (`ferry-secondary`), run from this binary (used by `ferry demo`).
    #[command(hide = true, disable_help_flag = true)]
    Secondary {
        /// Passed to ferry-secondary unchanged.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

impl Cli {
    /// The vehicle daemons set up their own logging (default level info); every other
    /// command logs through `ferry`'s.
    pub fn runs_daemon(&self) -> bool {
        matches!(
            self.command,
            Command::Primary { .. } | Command::Secondary { .. }
        )
    }
}

/// `argv[0]` then `args`, for a daemon's own parser.
fn daemon_args(
    name: &str,
    args: Vec<std::ffi::OsString>,
) -> impl Iterator<Item = std::ffi::OsString> {
    std::iter::once(std::ffi::OsString::from(name)).chain(args)
}

/// Run the command. A vehicle daemon's exit code is its own.
pub fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let result = match cli.command {
        Command::Primary { args } => {
            let args = daemon_args("ferry primary", args);
            return Ok(ferry_primary::cli::main_with_args(args));
        }
        Command::Secondary { args } => {
            let args = daemon_args("ferry secondary", args);
            return Ok(ferry_secondary::cli::main_with_args(args));
        }
        Command::Key(cmd) => key::run(cmd),
        Command::TufClient(args) => tuf_client::run(args),
        Command::Repo(cmd) => repo::run(cmd),
        Command::Proposal(cmd) => proposal::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Director(cmd) => director::run(cmd),
        Command::Admin(args) => admin::run(args),
        Command::Relay(cmd) => relay::run(cmd),
        Command::Demo(args) => demo::run(args),
    };
    result.map(|()| std::process::ExitCode::SUCCESS)
}
