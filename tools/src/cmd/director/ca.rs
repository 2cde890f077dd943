//! `ferry director ca`: the fleet CA that issues device certificates (mutual TLS) and the
//! Director's own server certificate. Keep the CA key on the issuing host, not the server.

use crate::error::{io_at, Error, Result};
use crate::keyfile::read_passphrase;
use ferry_core::{Clock, SystemClock};
use ferry_director::fleet_ca::{write_private_pem, FleetCa};
use std::path::{Path, PathBuf};

const EXAMPLE: &str = "Example:
  ferry director ca init --out-cert fleet-ca.pem --out-key fleet-ca.key --passphrase-file ca.pass
  ferry director ca server-cert --ca-cert fleet-ca.pem --ca-key fleet-ca.key \\
      --passphrase-file ca.pass --name director.example.com --name 127.0.0.1 \\
      --out-cert director/tls/server.pem --out-key director/tls/server.key
then in director.toml:
  [tls]
  ca_cert = \"fleet-ca.pem\"
  cert = \"tls/server.pem\"
  key = \"tls/server.key\"";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Make a new fleet CA (ECDSA P-256, self-signed).
    Init(InitArgs),
    /// Issue the Director's TLS server certificate.
    ServerCert(ServerCertArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Subject common name of the CA.
    #[arg(long, default_value = "Ferry fleet CA")]
    name: String,
    #[arg(long, default_value = "10years", value_parser = humantime::parse_duration)]
    valid_for: std::time::Duration,
    #[arg(long, value_name = "FILE")]
    out_cert: PathBuf,
    /// Never overwritten; mode 0600.
    #[arg(long, value_name = "FILE")]
    out_key: PathBuf,
    /// Encrypt the CA key with this passphrase (recommended); or --insecure-plaintext.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "insecure_plaintext"
    )]
    passphrase_file: Option<PathBuf>,
    #[arg(long)]
    insecure_plaintext: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServerCertArgs {
    #[command(flatten)]
    ca: CaFiles,
    /// DNS name or IP address the Director is reached at (repeatable).
    #[arg(long = "name", required = true)]
    names: Vec<String>,
    #[arg(long, default_value = "1year", value_parser = humantime::parse_duration)]
    valid_for: std::time::Duration,
    #[arg(long, value_name = "FILE")]
    out_cert: PathBuf,
    /// Written unencrypted (the server starts unattended), mode 0600.
    #[arg(long, value_name = "FILE")]
    out_key: PathBuf,
}

/// The CA's certificate and key files, for commands that issue.
#[derive(Debug, clap::Args)]
pub struct CaFiles {
    #[arg(long, value_name = "FILE")]
    pub ca_cert: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub ca_key: PathBuf,
    /// Passphrase of an encrypted CA key.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl CaFiles {
    pub fn load(&self) -> Result<FleetCa> {
        load_ca(&self.ca_cert, &self.ca_key, self.passphrase_file.as_deref())
    }
}

pub fn load_ca(cert: &Path, key: &Path, passphrase_file: Option<&Path>) -> Result<FleetCa> {
    let pass = passphrase_file.map(read_passphrase).transpose()?;
    Ok(FleetCa::read_files(
        cert,
        key,
        pass.as_ref().map(|p| p.as_slice()),
    )?)
}

pub fn write_cert(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_at(path))?;
    f.write_all(pem.as_bytes()).map_err(io_at(path))
}

pub fn run(cmd: Command) -> Result<()> {
    let now = SystemClock.now();
    match cmd {
        Command::Init(a) => {
            if a.passphrase_file.is_some() && a.insecure_plaintext {
                return Err(Error::Usage(
                    "give --passphrase-file or --insecure-plaintext, not both".into(),
                ));
            }
            let ca = FleetCa::generate(&a.name, now, a.valid_for)?;
            let pass = a
                .passphrase_file
                .as_deref()
                .map(read_passphrase)
                .transpose()?;
            write_private_pem(
                &a.out_key,
                &ca.key_pem(),
                pass.as_ref().map(|p| p.as_slice()),
            )?;
            write_cert(&a.out_cert, ca.cert_pem())?;
            println!(
                "fleet CA {:?} written to {}",
                ca.subject(),
                a.out_cert.display()
            );
            Ok(())
        }
        Command::ServerCert(a) => {
            let ca = a.ca.load()?;
            let issued = ca.issue_server_cert(&a.names, now, a.valid_for)?;
            write_private_pem(&a.out_key, &issued.key_pem, None)?;
            write_cert(&a.out_cert, &issued.cert_pem)?;
            println!(
                "server certificate for {:?} written to {}",
                a.names,
                a.out_cert.display()
            );
            Ok(())
        }
    }
}
