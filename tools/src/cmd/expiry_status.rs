//! The table `ferry repo status` and `ferry director status` print, and their exit code:
//! 3 when an offline role is inside its signing window.

use crate::error::{Error, Result};
use ferry_core::expiry::{time_left, RoleStatus, Signing};

/// Exit code when a ceremony is due (0: nothing to do; 1: the command failed).
pub const CEREMONY_DUE: u8 = 3;

pub fn print(title: &str, roles: &[RoleStatus], json: bool) -> Result<()> {
    print_with(title, &[], roles, json)
}

/// [`print`] with `facts` (name, value) shown under the title (and as JSON fields).
pub fn print_with(
    title: &str,
    facts: &[(&str, String)],
    roles: &[RoleStatus],
    json: bool,
) -> Result<()> {
    let due: Vec<&RoleStatus> = roles.iter().filter(|r| r.due).collect();
    if json {
        let mut value = serde_json::json!({
            "repository": title,
            "roles": roles,
            "ceremony_due": !due.is_empty(),
        });
        for (name, fact) in facts {
            value[*name] = serde_json::Value::String(fact.clone());
        }
        println!("{value:#}");
    } else {
        println!("{title}");
        for (name, fact) in facts {
            println!("{name}: {fact}");
        }
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        table.set_header([
            "role",
            "version",
            "expires",
            "time left",
            "threshold",
            "keys",
            "signed",
        ]);
        for r in roles {
            let keys: Vec<String> = r
                .keyids
                .iter()
                .map(|k| k.as_str()[..8].to_owned())
                .collect();
            table.add_row([
                r.role.clone(),
                r.version.to_string(),
                r.expires.to_rfc3339(),
                time_left(r.seconds_left),
                format!("{} of {}", r.threshold, r.keyids.len()),
                keys.join(" "),
                match r.signing {
                    Signing::Online => "online".to_owned(),
                    Signing::Offline => "offline (ceremony)".to_owned(),
                },
            ]);
        }
        println!("{table}");
        for r in &due {
            println!(
                "CEREMONY DUE: {} v{} is signed offline and expires in {}: start now with `{}`",
                r.role,
                r.version,
                time_left(r.seconds_left),
                r.ceremony.as_deref().unwrap_or("a key ceremony")
            );
        }
    }
    if due.is_empty() {
        Ok(())
    } else {
        Err(Error::Exit(CEREMONY_DUE))
    }
}
