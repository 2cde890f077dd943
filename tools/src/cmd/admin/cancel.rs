//! `ferry admin cancel`: withdraw assignments not yet installed. The vehicle's metadata is
//! re-signed at once, so its next poll no longer names them.

use super::client::{print_json, AdminClient};
use crate::error::{Error, Result};

const EXAMPLE: &str = "Example:
  ferry admin cancel WVW1          # every pending or in-flight assignment of WVW1
  ferry admin cancel --id 42       # one assignment";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Cancel every active assignment of this vehicle.
    vin: Option<String>,
    /// Cancel one assignment by id.
    #[arg(long, conflicts_with = "vin")]
    id: Option<i64>,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &AdminClient, a: Args) -> Result<()> {
    let reply = match (&a.vin, a.id) {
        (Some(vin), None) => client.delete(&format!("/vehicles/{vin}/assignments"))?,
        (None, Some(id)) => client.delete(&format!("/assignments/{id}"))?,
        _ => return Err(Error::Usage("give a VIN or --id ID".into())),
    };
    if a.json {
        return print_json(&reply);
    }
    match (&a.vin, reply.get("cancelled")) {
        (Some(vin), Some(n)) => println!("cancelled {n} assignment(s) of {vin}"),
        _ => println!("cancelled assignment {}", a.id.unwrap_or_default()),
    }
    Ok(())
}
