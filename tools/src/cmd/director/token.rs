//! `ferry director token`: admin API tokens. Only a token's hash is stored; the secret is
//! printed once.

use super::open_store;
use crate::error::{Error, Result};
use ferry_director::model::Scope;
use ferry_director::Store;
use std::path::PathBuf;

const EXAMPLE: &str = "Example:
  ferry director token create --config director/director.toml --name ci --scope write > ci.token
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

/// Create an admin token in the store of the Director at `config`: its id and secret.
pub fn create(config: &std::path::Path, name: &str, scope: Scope) -> Result<(i64, String)> {
    let (_, store) = open_store(config)?;
    Ok(store.create_admin_token(name, scope)?)
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Create(a) => {
            let (id, secret) = create(&a.config, &a.name, a.scope)?;
            if a.json {
                let out = serde_json::json!({"id": id, "name": a.name, "scope": a.scope, "token": secret});
                println!("{out}");
            } else {
                eprintln!(
                    "token {id} ({}, {}); the secret is shown once:",
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
            table.set_header(["id", "name", "scope", "created", "revoked"]);
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
