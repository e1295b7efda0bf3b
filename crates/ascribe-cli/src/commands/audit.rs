//! `ascribe audit inference|decision|alias`: which checkpoint decided, why it was there, and
//! the proof.

use anyhow::Context as _;
use ascribe_inference::queries::InferenceView;
use ascribe_inference::Receipt;
use ascribe_ledger::Timestamp;
use ascribe_registry::{queries, Segment};
use ascribe_store::query;
use ascribe_store::Backend;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::cli::AuditCommand;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Runs one `audit` subcommand.
pub fn run(context: &Context, command: AuditCommand) -> anyhow::Result<Outcome> {
    match command {
        AuditCommand::Inference { id, output } => {
            let mut backend = context.backend()?;
            let view = ascribe_inference::queries::inference(backend.as_mut(), &id)?
                .with_context(|| format!("no inference `{id}` in this ledger"))?;
            let answer = inference_answer(context, backend.as_mut(), view)?;
            print_answer(output.json, &answer)
        }
        AuditCommand::Observations { deployment, output } => {
            let mut backend = context.backend()?;
            let observations = observations(backend.as_mut(), deployment.as_deref())?;
            if output.json {
                print_json(&observations)?;
            } else {
                for observation in &observations {
                    let body = &observation["body"];
                    println!(
                        "{}  seq {}  {}  {}",
                        observation["time"].as_str().unwrap_or(""),
                        observation["seq"],
                        body["kind"].as_str().unwrap_or(""),
                        body["deployment"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(Outcome::Success)
        }
        AuditCommand::Decision { reference, output } => {
            let mut backend = context.backend()?;
            let views = ascribe_inference::queries::by_decision(backend.as_mut(), &reference)?;
            if views.is_empty() {
                anyhow::bail!("no inference carries decision reference `{reference}`");
            }
            let inferences = views
                .into_iter()
                .map(|view| inference_answer(context, backend.as_mut(), view))
                .collect::<anyhow::Result<Vec<_>>>()?;
            print_answer(
                output.json,
                &json!({"decision": reference, "inferences": inferences}),
            )
        }
        AuditCommand::Alias {
            name,
            at,
            from,
            to,
            output,
        } => {
            let mut backend = context.backend()?;
            if queries::alias(backend.as_mut(), &name)?.is_none() {
                anyhow::bail!("no alias `{name}`; `ascribe alias list` shows them");
            }
            let answer = match (at, from, to) {
                (Some(at), _, _) => at_instant(backend.as_mut(), &name, parse_time(&at)?)?,
                (None, Some(from), Some(to)) => window(
                    backend.as_mut(),
                    &name,
                    parse_time(&from)?,
                    parse_time(&to)?,
                )?,
                _ => anyhow::bail!("give --at TIME, or --from TIME with --to TIME"),
            };
            if output.json {
                print_json(&answer)?;
            } else {
                print_text(&answer);
            }
            Ok(Outcome::Success)
        }
    }
}

/// Parses an RFC 3339 time in any offset, to microseconds.
fn parse_time(text: &str) -> anyhow::Result<Timestamp> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text).map_err(|error| {
        anyhow::anyhow!("`{text}` is not an RFC 3339 time such as 2026-03-01T09:00:00Z: {error}")
    })?;
    Ok(Timestamp::from_datetime(parsed.with_timezone(&chrono::Utc)))
}

fn at_instant(backend: &mut dyn Backend, alias: &str, at: Timestamp) -> anyhow::Result<Value> {
    let segment = queries::resolve_at(backend, alias, at)?;
    let segment = segment
        .map(|segment| annotated(backend, segment))
        .transpose()?;
    Ok(json!({"alias": alias, "at": at.to_string(), "segment": segment}))
}

fn window(
    backend: &mut dyn Backend,
    alias: &str,
    from: Timestamp,
    to: Timestamp,
) -> anyhow::Result<Value> {
    if to <= from {
        anyhow::bail!("--to ({to}) must be after --from ({from})");
    }
    let segments = queries::timeline(backend, alias, from, to)?;
    let segments = segments
        .into_iter()
        .map(|segment| annotated(backend, segment))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(json!({
        "alias": alias,
        "from": from.to_string(),
        "to": to.to_string(),
        "segments": segments,
    }))
}

/// A segment with the flags an auditor must see: a moving upstream name.
fn annotated(backend: &mut dyn Backend, segment: Segment) -> anyhow::Result<Value> {
    let deployment = queries::deployment(backend, &segment.deployment)?;
    let mut value = serde_json::to_value(&segment)?;
    let moving = deployment.is_some_and(|deployment| deployment.moving_name);
    value["moving_name"] = json!(moving);
    Ok(value)
}

fn print_text(answer: &Value) {
    let segments = match (answer.get("segment"), answer.get("segments")) {
        (Some(Value::Null), _) => {
            println!(
                "alias `{}` did not exist at {}",
                answer["alias"].as_str().unwrap_or(""),
                answer["at"].as_str().unwrap_or("")
            );
            return;
        }
        (Some(segment), _) => vec![segment.clone()],
        (_, Some(Value::Array(segments))) => segments.clone(),
        _ => Vec::new(),
    };
    for segment in segments {
        let text = |key: &str| segment[key].as_str().unwrap_or("").to_owned();
        let rotation = &segment["rotation"];
        let flag = if segment["moving_name"] == json!(true) {
            "  [moving upstream name]"
        } else {
            ""
        };
        println!(
            "{} .. {}  {} -> {}{flag}\n    {} by {}: {}",
            text("from"),
            segment["to"].as_str().unwrap_or("now"),
            text("deployment"),
            text("checkpoint"),
            rotation["kind"].as_str().unwrap_or(""),
            rotation["actor"].as_str().unwrap_or(""),
            rotation["reason"].as_str().unwrap_or("-"),
        );
    }
}

fn print_answer(json: bool, answer: &Value) -> anyhow::Result<Outcome> {
    if json {
        print_json(answer)?;
        return Ok(Outcome::Success);
    }
    match answer.get("inferences").and_then(Value::as_array) {
        Some(inferences) => inferences.iter().for_each(print_inference),
        None => print_inference(answer),
    }
    Ok(Outcome::Success)
}

fn print_inference(answer: &Value) {
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    println!(
        "inference   {} (ledger seq {}, {})",
        text(&answer["inference_id"]),
        answer["seq"],
        text(&answer["time"])
    );
    println!(
        "asked for   {} by {} (decision {})",
        text(&answer["requested_model"]),
        text(&answer["caller"]),
        text(&answer["decision"])
    );
    println!("deployment  {}", text(&answer["deployment"]));
    println!("checkpoint  {}", text(&answer["checkpoint"]));
    println!(
        "served      {} (fingerprint {}): {}",
        text(&answer["served_model"]),
        text(&answer["system_fingerprint"]),
        text(&answer["identity_match"])
    );
    let rotation = &answer["rotation"]["rotation"];
    if !rotation.is_null() {
        println!(
            "because     {} by {}: {}",
            text(&rotation["kind"]),
            text(&rotation["actor"]),
            text(&rotation["reason"])
        );
    }
    println!(
        "status      {} {}",
        answer["status"],
        text(&answer["outcome"])
    );
    let completion = &answer["completion"]["record"];
    if !completion.is_null() {
        let ended = if completion["completed"] == true {
            "completed"
        } else {
            "truncated"
        };
        println!(
            "stream      {ended} (finish {}, {} bytes)",
            text(&completion["finish_reason"]),
            completion["n_bytes"]
        );
    }
    for (when, probe) in [
        ("before", "last probe before"),
        ("after", "first probe after"),
    ] {
        let observation = &answer["deployment_observations"][when];
        if !observation.is_null() {
            println!(
                "{probe:<11} {} (seq {})",
                text(&observation["body"]["kind"]),
                observation["seq"]
            );
        }
    }
    if let Some(tree_size) = answer["inclusion_proof"]["tree_size"].as_u64() {
        println!("proof       included in the signed tree head of size {tree_size}");
    }
    println!();
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

/// Everything an auditor asks about one inference: what was asked, what served it, the
/// checkpoint's documents, the rotation that put it behind the alias, and proofs.
fn inference_answer(
    context: &Context,
    backend: &mut dyn Backend,
    view: InferenceView,
) -> anyhow::Result<Value> {
    let record = &view.record;
    let final_served = view
        .completion
        .as_ref()
        .map(|completion| &completion.record.served);
    let served_field = |name: &str| {
        let recorded = record.served.get(name).filter(|value| !value.is_null());
        recorded
            .or_else(|| final_served.and_then(|served| served.get(name)))
            .cloned()
    };
    let checkpoint = queries::checkpoint(backend, &record.checkpoint)?;
    let rotation = match &record.alias {
        Some(alias) => queries::resolve_at(
            backend,
            alias,
            Timestamp::parse(&view.time).map_err(anyhow::Error::msg)?,
        )?,
        None => None,
    };
    let receipt = context
        .keys
        .load_signer()
        .ok()
        .map(|signer| {
            let receipt = Receipt::new(
                signer.name(),
                &record.inference_id,
                view.seq,
                &view.leaf_hash,
                &record.checkpoint,
            );
            receipt.sign(&signer)
        })
        .transpose()?;
    Ok(json!({
        "inference_id": record.inference_id,
        "seq": view.seq,
        "time": view.time,
        "api": record.api,
        "caller": record.caller,
        "decision": record.decision,
        "requested_model": record.requested_model,
        "alias": record.alias,
        "deployment": record.deployment,
        "checkpoint": record.checkpoint,
        "moving_name": record.moving_name,
        "served_model": served_field("model"),
        "system_fingerprint": served_field("system_fingerprint"),
        "served": record.served,
        "identity_match": record.identity_match,
        "mismatch_kind": record.mismatch_kind,
        "status": record.status,
        "outcome": record.outcome,
        "stream": record.stream,
        "upstream": record.upstream,
        "request_sha256": record.request_sha256,
        "response_sha256": record.response_sha256,
        "usage": record.usage,
        "completion": view.completion,
        "observations": view.observations,
        "deployment_observations": probes_around(backend, &record.deployment, view.seq)?,
        "checkpoint_record": checkpoint,
        "rotation": rotation,
        "receipt": receipt,
        "inclusion_proof": inclusion_proof(backend, view.seq)?,
    }))
}

/// The deployment's identity-probe observations just before and just after entry `seq`: what
/// the gateway knew about that deployment's weights around the time of the inference.
fn probes_around(backend: &mut dyn Backend, deployment: &str, seq: u64) -> anyhow::Result<Value> {
    let probes: Vec<Value> = observations(backend, Some(deployment))?
        .into_iter()
        .filter(|observation| observation["body"]["inference_id"].is_null())
        .collect();
    let before = probes
        .iter()
        .rev()
        .find(|probe| probe["seq"].as_u64() < Some(seq));
    let after = probes
        .iter()
        .find(|probe| probe["seq"].as_u64() > Some(seq));
    Ok(json!({"before": before, "after": after}))
}

/// An inclusion proof of entry `seq` against the latest signed tree head, if one covers it.
fn inclusion_proof(backend: &mut dyn Backend, seq: u64) -> anyhow::Result<Value> {
    let Some(head) = query::latest_tree_head(backend)? else {
        return Ok(Value::Null);
    };
    if head.head.size <= seq {
        return Ok(json!({"pending": "no signed tree head covers this entry yet"}));
    }
    let proof = query::inclusion_proof(backend, seq, head.head.size)?;
    Ok(json!({
        "index": seq,
        "tree_size": head.head.size,
        "leaf_hash": BASE64.encode(proof.leaf_hash),
        "proof": proof.proof.iter().map(|hash| BASE64.encode(hash)).collect::<Vec<_>>(),
        "tree_head": head.head.note,
    }))
}
