//! `ascribe checkpoint register|list|show`.

use std::path::Path;

use anyhow::Context as _;
use ascribe_registry::apply;
use ascribe_registry::changes::{register_checkpoint, NewCheckpoint};
use ascribe_registry::{queries, DocumentRole};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::{CheckpointCommand, CheckpointRegisterArgs};
use crate::commands::{append_all, print_json};
use crate::context::{actor, Context};
use crate::Outcome;

/// Runs one `checkpoint` subcommand.
pub fn run(context: &Context, command: CheckpointCommand) -> anyhow::Result<Outcome> {
    match command {
        CheckpointCommand::Register(args) => register(context, args),
        CheckpointCommand::List(output) => {
            let checkpoints = queries::checkpoints(context.backend()?.as_mut())?;
            if output.json {
                print_json(&checkpoints)?;
            } else {
                println!("{:<72} {:<8} registered", "id", "kind");
                for checkpoint in checkpoints {
                    println!(
                        "{:<72} {:<8} {}",
                        checkpoint.id, checkpoint.kind, checkpoint.registered_at
                    );
                }
            }
            Ok(Outcome::Success)
        }
        CheckpointCommand::Show { id, output } => show(context, &id, output.json),
    }
}

fn register(context: &Context, args: CheckpointRegisterArgs) -> anyhow::Result<Outcome> {
    let actor = actor(&args.actor);
    let mut ledger = context.ledger()?;
    let mut checkpoint = NewCheckpoint {
        note: args.note.clone(),
        ..NewCheckpoint::default()
    };
    match (&args.weights, &args.provider, &args.snapshot) {
        (Some(weights), _, _) => checkpoint.manifest = Some(hash_weights(weights)?),
        (None, Some(provider), Some(snapshot)) => {
            checkpoint.hosted = Some((provider.clone(), snapshot.clone()));
        }
        _ => anyhow::bail!("give --weights PATH, or --provider with --snapshot"),
    }

    let mut changes = Vec::new();
    let here = Path::new("");
    let documents = [
        (DocumentRole::Card, &args.card),
        (DocumentRole::Evaluation, &args.evaluation),
        (DocumentRole::Lineage, &args.lineage),
    ];
    for (role, path) in documents {
        let reference = apply::plan_document(ledger.backend(), role, here, path, &mut changes)?;
        match role {
            DocumentRole::Card => checkpoint.card = reference,
            DocumentRole::Evaluation => checkpoint.evaluation = reference,
            _ => checkpoint.lineage = reference,
        }
    }
    let id = checkpoint.id().map_err(anyhow::Error::msg)?;
    let mut entries: Vec<_> = changes
        .into_iter()
        .map(|change| change.into_entry(&actor))
        .collect();
    entries.push(register_checkpoint(checkpoint, &actor));

    let mut outcomes = append_all(&mut ledger, entries)?;
    let registered = outcomes
        .pop()
        .context("no outcome")?
        .map_err(anyhow::Error::msg)?;
    tracing::info!(checkpoint = %id, seq = registered.entry.seq, "checkpoint registered");
    if args.output.json {
        print_json(&json!({"checkpoint": id, "seq": registered.entry.seq}))?;
    } else {
        println!(
            "registered checkpoint {id} (ledger seq {})",
            registered.entry.seq
        );
    }
    Ok(Outcome::Success)
}

/// Hashes weights with a progress bar on a terminal; returns the manifest as JSON.
pub fn hash_weights(path: &Path) -> anyhow::Result<serde_json::Value> {
    let progress = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "hashing {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    )?);
    let manifest = ascribe_weights::hash_path(path, &|done, total| {
        progress.set_length(total);
        progress.set_position(done);
    });
    progress.finish_and_clear();
    Ok(serde_json::to_value(manifest?)?)
}

fn show(context: &Context, id: &str, json: bool) -> anyhow::Result<Outcome> {
    let mut backend = context.backend()?;
    let checkpoint = queries::checkpoint(backend.as_mut(), id)?
        .with_context(|| format!("no checkpoint {id}; `ascribe checkpoint list` shows them"))?;
    let production = queries::segments_for_checkpoint(backend.as_mut(), id)?;
    if json {
        print_json(&json!({"checkpoint": checkpoint, "production": production}))?;
        return Ok(Outcome::Success);
    }
    println!("checkpoint  {}", checkpoint.id);
    println!("kind        {}", checkpoint.kind);
    if let (Some(provider), Some(snapshot)) = (&checkpoint.provider, &checkpoint.snapshot) {
        println!("hosted      {provider} {snapshot}");
    }
    let documents = [
        ("card", &checkpoint.card),
        ("evaluation", &checkpoint.evaluation),
        ("lineage", &checkpoint.lineage),
    ];
    for (label, document) in documents {
        if let Some(document) = document {
            println!("{label:<11} {} {}", document.digest, document.name);
        }
    }
    println!(
        "registered  {} by {} (seq {})",
        checkpoint.registered_at, checkpoint.registered_by, checkpoint.registered_seq
    );
    for segment in production {
        let until = segment.to.as_deref().unwrap_or("now");
        println!(
            "in use      {} behind `{}` via `{}` from {} to {until}",
            segment.rotation.kind, segment.alias, segment.deployment, segment.from
        );
    }
    Ok(Outcome::Success)
}
