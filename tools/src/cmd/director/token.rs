//! `ferry director token`: admin API tokens. Only a token's hash is stored; the secret is
//! printed once.

use super::open_store;
use crate::error::{io_at, Error, Result};
use chrono::{DateTime, Utc};
use ferry_core::{Clock, SystemClock};
use ferry_director::model::Scope;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry director token create --config director/director.toml --name ci --scope write --out ci.token
  ferry director token create --config director/director.toml --name dash --scope read --expires 90d --out dash.token
  ferry director token list --config director/director.toml --json
  ferry director token revoke --config director/director.toml 3";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLE)]
pub enum Command {
    /// Create a token and print its secret (shown once).
    Create(CreateArgs),
    /// List tokens (never their secrets).
    List(ListArgs),
    /// Revoke a token by id.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// A name to tell tokens apart (letters, digits, '-', '_', '.').
    #[arg(long)]
    name: String,
    /// `read` (inventory and status) or `write` (also register, assign, cancel).
    #[arg(long, value_parser = parse_scope)]
    scope: Scope,
    /// Refuse the token once this long has passed (e.g. 90d, 12h); default: until revoked.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    expires: Option<std::time::Duration>,
    /// Write the secret to this new file, mode 0600 (never overwritten), instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    id: i64,
}

fn parse_scope(s: &str) -> std::result::Result<Scope, String> {
    match s {
        "read" => Ok(Scope::Read),
        "write" => Ok(Scope::Write),
        _ => Err(format!("{s:?}: expected read or write")),
    }
}

/// Create an admin token in the store of the Director at `config`, refused from `expires_at` on
/// if given: its id and secret.
pub fn create(
    config: &std::path::Path,
    name: &str,
    scope: Scope,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(i64, String)> {
    let (_, store) = open_store(config)?;
    Ok(store.create_admin_token(name, scope, expires_at)?)
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Create(a) => {
            let expires_at = a
                .expires
                .map(|d| {
                    chrono::Duration::from_std(d)
                        .ok()
                        .and_then(|d| SystemClock.now().checked_add_signed(d))
                        .ok_or_else(|| {
                            Error::Usage(format!(
                                "--expires {}: too far in the future; expected e.g. 90d",
                                humantime::format_duration(d)
                            ))
                        })
                })
                .transpose()?;
            let (id, secret) = create(&a.config, &a.name, a.scope, expires_at)?;
            let until = expires_at.map_or("until revoked".to_owned(), |t| {
                format!("expires {}", t.to_rfc3339())
            });
            if let Some(out) = &a.out {
                ferry_keys::fs::write_secret(out, format!("{secret}\n").as_bytes()).map_err(
                    |e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                            "--out {}: the file exists; expected a new path (a token file is never overwritten)",
                            out.display()
                        )),
                        _ => io_at(out)(e),
                    },
                )?;
            }
            if a.json {
                let mut out = serde_json::json!({
                    "id": id, "name": a.name, "scope": a.scope,
                    "expires_at": expires_at.map(|t| t.to_rfc3339()),
                });
                match &a.out {
                    Some(path) => out["file"] = serde_json::json!(path),
                    None => out["token"] = serde_json::json!(secret),
                }
                println!("{out}");
            } else if let Some(path) = &a.out {
                println!(
                    "token {id} ({}, {}, {until}) written to {} (mode 0600)",
                    a.name,
                    a.scope,
                    path.display()
                );
            } else {
                eprintln!(
                    "token {id} ({}, {}, {until}); the secret is shown once:",
                    a.name, a.scope
                );
                println!("{secret}");
            }
            Ok(())
        }
        Command::List(a) => {
            let (_, store) = open_store(&a.config)?;
            let tokens = store.list_admin_tokens()?;
            if a.json {
                let out = serde_json::to_string_pretty(&tokens)
                    .map_err(|e| Error::Usage(format!("cannot print tokens: {e}")))?;
                println!("{out}");
                return Ok(());
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(["id", "name", "scope", "created", "expires", "revoked"]);
            for t in tokens {
                let row = serde_json::to_value(&t)
                    .map_err(|e| Error::Usage(format!("cannot print tokens: {e}")))?;
                let cell = |k: &str| match &row[k] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    v => v.to_string(),
                };
                table.add_row([
                    cell("id"),
                    cell("name"),
                    cell("scope"),
                    cell("created_at"),
                    cell("expires_at"),
                    cell("revoked_at"),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        Command::Revoke(a) => {
            let (_, store) = open_store(&a.config)?;
            store.revoke_admin_token(a.id)?;
            println!("token {} revoked", a.id);
            Ok(())
        }
    }
}
