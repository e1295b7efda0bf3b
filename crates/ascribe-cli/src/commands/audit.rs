//! `ascribe audit ...`: the answers of `ascribe_audit`, printed as text or JSON.

use ascribe_audit::alias::{AliasAtAnswer, AliasWindowAnswer, SegmentInForce};
use ascribe_audit::checkpoint::CheckpointAnswer;
use ascribe_audit::inference::{InclusionAnswer, InferenceAnswer};
use ascribe_audit::search::{InferencePage, InferenceQuery};
use ascribe_audit::{parse_time, Window};
use ascribe_store::query;
use ascribe_store::Backend;
use serde_json::{json, Value};

use crate::cli::AuditCommand;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Runs one `audit` subcommand.
pub fn run(context: &Context, command: AuditCommand) -> anyhow::Result<Outcome> {
    let mut backend = context.backend()?;
    // Receipts are signed when the signing key is at hand; an auditor's copy may lack it.
    let signer = context.keys.load_signer().ok();
    match command {
        AuditCommand::Inference { id, output } => {
            let answer =
                ascribe_audit::inference::inference(backend.as_mut(), &id, signer.as_ref())?;
            print(output.json, &answer, print_inference)
        }
        AuditCommand::Decision { reference, output } => {
            let answer =
                ascribe_audit::inference::decision(backend.as_mut(), &reference, signer.as_ref())?;
            print(output.json, &answer, |answer| {
                answer.inferences.iter().for_each(print_inference)
            })
        }
        AuditCommand::Alias {
            name,
            at,
            from,
            to,
            output,
        } => match (at, from, to) {
            (Some(at), _, _) => {
                let answer = ascribe_audit::alias::at(backend.as_mut(), &name, parse_time(&at)?)?;
                print(output.json, &answer, print_alias_at)
            }
            (None, Some(from), Some(to)) => {
                let window = Window::parse(&from, &to)?;
                let answer = ascribe_audit::alias::window(backend.as_mut(), &name, window)?;
                print(output.json, &answer, print_alias_window)
            }
            _ => anyhow::bail!("give --at TIME, or --from TIME with --to TIME"),
        },
        AuditCommand::Checkpoint { id, output } => {
            let answer = ascribe_audit::checkpoint::checkpoint(backend.as_mut(), &id)?;
            print(output.json, &answer, print_checkpoint)
        }
        AuditCommand::Inferences {
            from,
            to,
            caller,
            alias,
            checkpoint,
            with_decision,
            after,
            limit,
            output,
        } => {
            let query = InferenceQuery {
                window: Window::parse(&from, &to)?,
                caller,
                alias,
                checkpoint,
                with_decision,
                after,
                limit,
            };
            let page = ascribe_audit::search::inferences(backend.as_mut(), &query)?;
            print(output.json, &page, print_page)
        }
        AuditCommand::Observations { deployment, output } => {
            let observations = observations(backend.as_mut(), deployment.as_deref())?;
            print(output.json, &observations, |observations| {
                for observation in observations {
                    let body = &observation["body"];
                    println!(
                        "{}  seq {}  {}  {}",
                        observation["time"].as_str().unwrap_or(""),
                        observation["seq"],
                        body["kind"].as_str().unwrap_or(""),
                        body["deployment"].as_str().unwrap_or("")
                    );
                }
            })
        }
    }
}

fn print<T: serde::Serialize>(
    json: bool,
    answer: &T,
    text: impl Fn(&T),
) -> anyhow::Result<Outcome> {
    if json {
        print_json(answer)?;
    } else {
        text(answer);
    }
    Ok(Outcome::Success)
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

fn print_inference(answer: &InferenceAnswer) {
    println!(
        "inference   {} (ledger seq {}, {})",
        answer.record.inference_id, answer.seq, answer.time
    );
    println!(
        "asked for   {} by {} (decision {})",
        answer.record.requested_model,
        answer.record.caller,
        or_dash(answer.record.decision.as_deref())
    );
    println!("deployment  {}", answer.record.deployment);
    println!("checkpoint  {}", answer.record.checkpoint);
    for document in &answer.documents {
        println!(
            "  {:<11} {} (stored {}, {})",
            document.role, document.name, document.stored_at, document.digest
        );
    }
    println!(
        "served      {} (fingerprint {}): {}",
        or_dash(answer.served_model.as_deref()),
        or_dash(answer.system_fingerprint.as_deref()),
        answer.record.identity_match
    );
    if let Some(segment) = &answer.rotation {
        let cause = &segment.rotation;
        println!(
            "because     {} by {} at {}: {}",
            cause.kind,
            cause.actor,
            segment.from,
            or_dash(cause.reason.as_deref())
        );
    }
    println!(
        "status      {} {}",
        answer.record.status, answer.record.outcome
    );
    if let Some(completion) = &answer.completion {
        let record = &completion.record;
        let ended = if record.completed {
            "completed"
        } else {
            "truncated"
        };
        println!(
            "stream      {ended} (finish {}, {} bytes)",
            or_dash(record.finish_reason.as_deref()),
            record.n_bytes
        );
    }
    for observation in &answer.observations {
        println!(
            "observed    {} (seq {})",
            observation.body["kind"].as_str().unwrap_or(""),
            observation.seq
        );
    }
    let probes = &answer.deployment_observations;
    for (label, probe) in [
        ("last probe before", &probes.before),
        ("first probe after", &probes.after),
    ] {
        if let Some(probe) = probe {
            println!(
                "{label:<11} {} (seq {})",
                probe.body["kind"].as_str().unwrap_or(""),
                probe.seq
            );
        }
    }
    match &answer.inclusion_proof {
        Some(InclusionAnswer::Proof { tree_size, .. }) => {
            println!("proof       included in the signed tree head of size {tree_size}")
        }
        Some(InclusionAnswer::Pending { pending }) => println!("proof       {pending}"),
        None => println!("proof       no signed tree head yet"),
    }
    println!();
}

fn print_alias_at(answer: &AliasAtAnswer) {
    let Some(SegmentInForce {
        segment,
        moving_name,
    }) = &answer.segment
    else {
        println!("alias `{}` did not exist at {}", answer.alias, answer.at);
        return;
    };
    let flag = if *moving_name {
        "  [moving upstream name]"
    } else {
        ""
    };
    println!(
        "{} .. {}  {} -> {}{flag}\n    {} by {}: {}",
        segment.from,
        segment.to.as_deref().unwrap_or("still in force"),
        segment.deployment,
        segment.checkpoint,
        segment.rotation.kind,
        segment.rotation.actor,
        or_dash(segment.rotation.reason.as_deref()),
    );
}

fn print_alias_window(answer: &AliasWindowAnswer) {
    for gap in &answer.gaps {
        println!("{} .. {}  (alias did not exist)", gap.from, gap.to);
    }
    for segment in &answer.segments {
        let flag = if segment.moving_name {
            "  [moving upstream name]"
        } else {
            ""
        };
        let cause = &segment.segment.rotation;
        println!(
            "{} .. {}  {} -> {}{flag}  {} inferences\n    {} by {}: {}",
            segment.segment.from,
            segment.segment.to.as_deref().unwrap_or("still in force"),
            segment.segment.deployment,
            segment.segment.checkpoint,
            segment.inferences,
            cause.kind,
            cause.actor,
            or_dash(cause.reason.as_deref()),
        );
    }
    if answer.observation_count > 0 {
        println!("{} drift observation(s):", answer.observation_count);
        for observation in &answer.observations {
            println!(
                "    {}  {}  {}",
                observation.time,
                observation.body["kind"].as_str().unwrap_or(""),
                observation.body["deployment"].as_str().unwrap_or("")
            );
        }
    }
}

fn print_checkpoint(answer: &CheckpointAnswer) {
    let checkpoint = &answer.checkpoint;
    println!(
        "checkpoint  {} ({}, registered {} by {})",
        checkpoint.id, checkpoint.kind, checkpoint.registered_at, checkpoint.registered_by
    );
    for document in &answer.documents {
        println!(
            "  {:<11} {} (stored {})",
            document.role, document.name, document.stored_at
        );
    }
    println!(
        "served      {} inferences, {} decisions",
        answer.inferences, answer.decisions
    );
    for (label, row) in [
        ("first", &answer.first_inference),
        ("last", &answer.last_inference),
    ] {
        if let Some(row) = row {
            println!("{label:<11} {} at {}", row.inference_id, row.time);
        }
    }
    println!("in production:");
    for period in &answer.periods {
        println!(
            "    {} .. {}  alias {} via {}  ({} by {}), {} inferences",
            period.segment.from,
            period.segment.to.as_deref().unwrap_or("still in force"),
            period.segment.alias,
            period.segment.deployment,
            period.segment.rotation.kind,
            period.segment.rotation.actor,
            period.inferences
        );
    }
}

fn print_page(page: &InferencePage) {
    println!(
        "{:<27} {:<38} {:<16} {:<20} {:<24} {:<11} status",
        "time", "inference", "caller", "decision", "checkpoint", "identity"
    );
    for row in &page.inferences {
        println!(
            "{:<27} {:<38} {:<16} {:<20} {:<24} {:<11} {}",
            row.time,
            row.inference_id,
            row.caller,
            or_dash(row.decision.as_deref()),
            row.checkpoint,
            row.identity_match,
            row.status
        );
    }
    match page.next {
        Some(next) => println!("more: add --after {next}"),
        None => println!("({} rows, last page)", page.inferences.len()),
    }
}

/// Every `observation.recorded` entry, oldest first, optionally about one deployment.
fn observations(backend: &mut dyn Backend, deployment: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let rows = query::read(backend, |tx| {
        let sql = "SELECT seq, time, entry FROM ledger_entries WHERE kind = $1 ORDER BY seq";
        tx.query(sql, &["observation.recorded".into()])
    })?;
    let mut observations = Vec::new();
    for row in rows {
        let entry: Value = serde_json::from_str(row[2].text("entry")?)?;
        let body = entry["body"].clone();
        if deployment.is_some_and(|name| body["deployment"] != name) {
            continue;
        }
        observations
            .push(json!({"seq": row[0].count("seq")?, "time": row[1].text("time")?, "body": body}));
    }
    Ok(observations)
}
