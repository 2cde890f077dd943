//! `ferry-primary`: a thin wrapper; the daemon's command line is [`ferry_primary::cli`].

fn main() -> std::process::ExitCode {
    ferry_primary::cli::main_with_args(std::env::args_os())
}
