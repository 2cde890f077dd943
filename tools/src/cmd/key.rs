use crate::error::Result;
use clap::Subcommand;

/// Key commands (being filled in).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the TUF public key JSON of a key file.
    Pub { file: std::path::PathBuf },
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Pub { file } => Err(crate::error::Error::Usage(format!(
            "not implemented yet: {}",
            file.display()
        ))),
    }
}
