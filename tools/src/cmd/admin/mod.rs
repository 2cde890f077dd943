//! `ferry admin`: the Director's admin API from a terminal: inventory, assignments,
//! cancellations and status, as tables or `--json`.

use crate::error::Result;
use clap::Subcommand;

// assign, client, status and vehicle are also steps of the demo's world (crate::world).
pub(crate) mod assign;
mod bundle;
mod campaign;
mod cancel;
pub(crate) mod client;
mod manifests;
mod receipts;
mod relay;
pub(crate) mod status;
pub(crate) mod vehicle;

pub use client::Connection;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register, list and show vehicles.
    #[command(subcommand)]
    Vehicle(vehicle::Command),
    /// Assign Image repository targets to ECUs of a vehicle.
    Assign(assign::Args),
    /// Assign one target to every ECU of a hardware id, fleet-wide or in listed vehicles.
    Campaign(campaign::Args),
    /// Cancel a vehicle's active assignments, or one assignment by id.
    Cancel(cancel::Args),
    /// A vehicle's assignments and each ECU's last report.
    Status(status::Args),
    /// PURE-2 offline-update bundles for air-gapped vehicles: create, list, show, revoke.
    #[command(subcommand)]
    Bundle(bundle::Command),
    /// Receipts of offline installs brought back from vehicles.
    #[command(subcommand)]
    Receipts(receipts::Command),
    /// Gateway relays for segregated networks: register, list, revoke.
    #[command(subcommand)]
    Relay(relay::Command),
    /// Retention of stored manifests.
    #[command(subcommand)]
    Manifests(manifests::Command),
}

pub fn run(args: Args) -> Result<()> {
    let client = client::AdminClient::connect(&args.connection)?;
    match args.command {
        Command::Vehicle(c) => vehicle::run(&client, c),
        Command::Assign(a) => assign::run(&client, a),
        Command::Campaign(a) => campaign::run(&client, a),
        Command::Cancel(a) => cancel::run(&client, a),
        Command::Status(a) => status::run(&client, a),
        Command::Manifests(c) => manifests::run(&client, c),
        Command::Bundle(c) => bundle::run(&client, c),
        Command::Receipts(c) => receipts::run(&client, c),
        Command::Relay(c) => relay::run(&client, c),
    }
}
