//! `ascribe audit alias`: what an alias resolved to, and why.

use ascribe_ledger::Timestamp;
use ascribe_registry::{queries, Segment};
use ascribe_store::Backend;
use serde_json::{json, Value};

use crate::cli::AuditCommand;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Runs one `audit` subcommand.
pub fn run(context: &Context, command: AuditCommand) -> anyhow::Result<Outcome> {
    match command {
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
    Ok(
        json!({"alias": alias, "from": from.to_string(), "to": to.to_string(), "segments": segments}),
    )
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
