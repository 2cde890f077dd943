//! `ferry-secondary`: a thin wrapper; the daemon's command line is [`ferry_secondary::cli`].

fn main() -> std::process::ExitCode {
    ferry_secondary::cli::main_with_args(std::env::args_os())
}
