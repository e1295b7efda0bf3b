//! `ascribe alias create|rotate|rollback|list|show`.

use std::path::Path;

use anyhow::Context as _;
use ascribe_registry::apply;
use ascribe_registry::changes::{create_alias, rotate_alias, NewAlias, NewRotation};
use ascribe_registry::{queries, Evidence, RotationKind};
use ascribe_store::{Ledger, PendingEntry};
use serde_json::json;

use crate::cli::AliasCommand;
use crate::commands::{append_all, print_json};
use crate::context::{actor, Context};
use crate::Outcome;

/// Runs one `alias` subcommand.
pub fn run(context: &Context, command: AliasCommand) -> anyhow::Result<Outcome> {
    match command {
        AliasCommand::Create {
            name,
            to,
            require_evidence,
            on_mismatch,
            answer_model,
            actor: who,
            output,
        } => {
            let alias = NewAlias {
                name: name.clone(),
                deployment: to,
                require_evidence,
                on_mismatch: on_mismatch.parse().map_err(anyhow::Error::msg)?,
                answer_model: answer_model.parse().map_err(anyhow::Error::msg)?,
            };
            let mut ledger = context.ledger()?;
            let seq = write(&mut ledger, Vec::new(), create_alias(alias, &actor(&who)))?;
            report(output.json, &name, seq, "created")
        }
        AliasCommand::Rotate {
            name,
            to,
            kind,
            reason,
            evidence,
            actor: who,
            output,
        } => {
            let kind = kind.parse().map_err(anyhow::Error::msg)?;
            let rotation = NewRotation {
                alias: name.clone(),
                to: Some(to),
                kind,
                reason,
                evidence: None,
            };
            let seq = rotate(context, rotation, evidence.as_deref(), &actor(&who))?;
            report(output.json, &name, seq, "rotated")
        }
        AliasCommand::Rollback {
            name,
            reason,
            kind,
            evidence,
            actor: who,
            output,
        } => {
            let kind: RotationKind = kind.parse().map_err(anyhow::Error::msg)?;
            if !matches!(kind, RotationKind::Rollback | RotationKind::Incident) {
                anyhow::bail!(
                    "a rollback is recorded as kind `rollback` or `incident`, not `{kind}`"
                );
            }
            let rotation = NewRotation {
                alias: name.clone(),
                to: None,
                kind,
                reason,
                evidence: None,
            };
            let seq = rotate(context, rotation, evidence.as_deref(), &actor(&who))?;
            report(output.json, &name, seq, "rolled back")
        }
        AliasCommand::List(output) => list(context, output.json),
        AliasCommand::Show { name, output } => show(context, &name, output.json),
    }
}

fn rotate(
    context: &Context,
    mut rotation: NewRotation,
    evidence: Option<&str>,
    actor: &str,
) -> anyhow::Result<u64> {
    let mut ledger = context.ledger()?;
    let mut changes = Vec::new();
    if let Some(evidence) = evidence {
        let planned =
            apply::plan_evidence(ledger.backend(), evidence, Path::new(""), &mut changes)?;
        rotation.evidence = Some(planned);
    }
    let documents = changes
        .into_iter()
        .map(|change| change.into_entry(actor))
        .collect();
    write(&mut ledger, documents, rotate_alias(rotation, actor))
}

/// Appends any documents and then the change, in one transaction; returns the change's seq.
fn write(
    ledger: &mut Ledger,
    mut entries: Vec<PendingEntry>,
    change: PendingEntry,
) -> anyhow::Result<u64> {
    entries.push(change);
    let mut outcomes = append_all(ledger, entries)?;
    let appended = outcomes
        .pop()
        .context("no outcome")?
        .map_err(anyhow::Error::msg)?;
    Ok(appended.entry.seq)
}

fn report(json: bool, alias: &str, seq: u64, what: &str) -> anyhow::Result<Outcome> {
    tracing::info!(%alias, seq, "alias {what}");
    if json {
        print_json(&json!({"alias": alias, "seq": seq}))?;
    } else {
        println!("{what} alias `{alias}` (ledger seq {seq})");
    }
    Ok(Outcome::Success)
}

fn list(context: &Context, json: bool) -> anyhow::Result<Outcome> {
    let aliases = queries::aliases(context.backend()?.as_mut())?;
    if json {
        print_json(&aliases)?;
        return Ok(Outcome::Success);
    }
    println!(
        "{:<24} {:<24} {:<10} evidence",
        "alias", "deployment", "mismatch"
    );
    for alias in aliases {
        let evidence = if alias.require_evidence {
            "required"
        } else {
            "optional"
        };
        println!(
            "{:<24} {:<24} {:<10} {evidence}",
            alias.name, alias.deployment, alias.on_mismatch
        );
    }
    Ok(Outcome::Success)
}

fn show(context: &Context, name: &str, json: bool) -> anyhow::Result<Outcome> {
    let mut backend = context.backend()?;
    let alias = queries::alias(backend.as_mut(), name)?
        .with_context(|| format!("no alias `{name}`; `ascribe alias list` shows them"))?;
    let history = queries::history(backend.as_mut(), name)?;
    if json {
        print_json(&json!({"alias": alias, "history": history}))?;
        return Ok(Outcome::Success);
    }
    println!(
        "alias `{}` -> `{}` (on mismatch: {})",
        alias.name, alias.deployment, alias.on_mismatch
    );
    for segment in history {
        let until = segment.to.as_deref().unwrap_or("now");
        let evidence = match &segment.rotation.evidence {
            Some(Evidence::Uri(uri)) => format!(" evidence {uri}"),
            Some(Evidence::Document(document)) => format!(" evidence {}", document.digest),
            None => String::new(),
        };
        println!(
            "  {} .. {until}  {} ({})  {} by {}: {}{evidence}",
            segment.from,
            segment.deployment,
            segment.checkpoint,
            segment.rotation.kind,
            segment.rotation.actor,
            segment.rotation.reason.as_deref().unwrap_or("-"),
        );
    }
    Ok(Outcome::Success)
}
