//! `ascribe key create|revoke|list`: who may call, administer and audit.

use ascribe_access::{create_key, list_keys, new_token, revoke_key, Role};
use serde_json::json;

use crate::cli::KeyCommand;
use crate::commands::{append, print_json};
use crate::context::{default_actor, Context};
use crate::Outcome;

/// Runs one `key` subcommand.
pub fn run(context: &Context, command: KeyCommand) -> anyhow::Result<Outcome> {
    match command {
        KeyCommand::Create {
            name,
            role,
            actor,
            json,
        } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let token = new_token()?;
            let actor = actor.unwrap_or_else(default_actor);
            let mut ledger = context.ledger()?;
            let seq = append(
                &mut ledger,
                create_key(&name, role, &token.token_sha256, &actor),
            )?;
            tracing::info!(key = %name, %role, seq, "key created");
            if json {
                print_json(&json!({"name": name, "role": role, "seq": seq, "token": token.token}))?;
            } else {
                println!("created {role} key `{name}` (ledger seq {seq}); its token, shown once:");
                println!("{}", token.token);
            }
        }
        KeyCommand::Revoke { name, actor, json } => {
            let actor = actor.unwrap_or_else(default_actor);
            let seq = append(&mut context.ledger()?, revoke_key(&name, &actor))?;
            if json {
                print_json(&json!({"name": name, "revoked": true, "seq": seq}))?;
            } else {
                println!("revoked key `{name}` (ledger seq {seq})");
            }
        }
        KeyCommand::List { json } => {
            let keys = list_keys(context.backend()?.as_mut())?;
            if json {
                print_json(&keys)?;
            } else {
                println!("{:<24} {:<8} {:<28} status", "name", "role", "created");
                for key in keys {
                    let status = key
                        .revoked_at
                        .map_or("active".to_owned(), |at| format!("revoked {at}"));
                    println!(
                        "{:<24} {:<8} {:<28} {status}",
                        key.name, key.role, key.created_at
                    );
                }
            }
        }
    }
    Ok(Outcome::Success)
}
