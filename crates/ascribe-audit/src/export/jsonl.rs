//! The JSONL evidence package, `ascribe-export/1`: the window's entries, the context entries
//! a reader needs, and proofs against one signed tree head.

use std::collections::BTreeMap;
use std::io::Write;

use ascribe_ledger::Hash;
use ascribe_registry::queries;
use ascribe_store::query::{self, read};
use ascribe_store::Backend;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::json;

use super::{ExportSummary, PAGE};
use crate::window::seq_range;
use crate::{AuditError, Window};

/// The `format` member of a package's header.
pub const PACKAGE_FORMAT: &str = "ascribe-export/1";

fn base64_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| BASE64.encode(hash)).collect()
}

fn line(out: &mut dyn Write, value: &serde_json::Value) -> Result<(), AuditError> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes the package for `window`. Entries after the latest signed tree head are left out
/// (and counted in the summary): nothing in a package is unproved.
pub fn write_jsonl(
    backend: &mut dyn Backend,
    window: Window,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let head = query::latest_tree_head(backend)?.ok_or_else(|| {
        AuditError::NotFound(
            "this ledger has no signed tree head yet, so nothing can be proved; the gateway \
             signs one within a second of its first entry"
                .into(),
        )
    })?;
    let tree_size = head.head.size;
    let (start, end) = read(backend, |tx| seq_range(tx, &window))?;
    let (first_seq, end_seq) = (start.min(tree_size), end.min(tree_size));

    let frontier = query::frontier_at(backend, first_seq)?;
    let consistency = query::consistency_proof(backend, end_seq, tree_size)?;
    let origin = query::meta(backend, "origin")?.unwrap_or_default();
    line(
        out,
        &json!({
            "type": "header",
            "format": PACKAGE_FORMAT,
            "origin": origin,
            "from": window.from.to_string(),
            "to": window.to.to_string(),
            "first_seq": first_seq,
            "end_seq": end_seq,
            "tree_head": head.head.note,
            "frontier": base64_all(frontier.nodes()),
            "consistency": base64_all(&consistency),
        }),
    )?;

    let context = context_entries(backend, &window, first_seq, end_seq, tree_size)?;
    for (&seq, role) in &context {
        let proof = query::inclusion_proof(backend, seq, tree_size)?;
        let entry = entry_text(backend, seq)?;
        line(
            out,
            &json!({
                "type": "context",
                "role": role,
                "seq": seq,
                "entry": entry,
                "inclusion": base64_all(&proof.proof),
            }),
        )?;
    }

    let mut next = first_seq;
    while next < end_seq {
        let limit = u64::from(PAGE).min(end_seq - next);
        let entries = query::entries(backend, next, limit)?;
        if entries.is_empty() {
            return Err(AuditError::Invalid(format!("entry {next} is missing")));
        }
        for entry in entries {
            line(
                out,
                &json!({"type": "entry", "seq": entry.seq, "entry": entry.entry}),
            )?;
            next = entry.seq + 1;
        }
    }

    let rows = end_seq - first_seq;
    line(
        out,
        &json!({"type": "end", "entries": rows, "context": context.len()}),
    )?;
    out.flush()?;
    Ok(ExportSummary {
        rows,
        context: context.len() as u64,
        tree_size: Some(tree_size),
        not_yet_signed: end.saturating_sub(end_seq),
    })
}

fn entry_text(backend: &mut dyn Backend, seq: u64) -> Result<String, AuditError> {
    query::entries(backend, seq, 1)?
        .into_iter()
        .next()
        .map(|entry| entry.entry)
        .ok_or_else(|| AuditError::Invalid(format!("entry {seq} is missing")))
}

/// The entries outside `[first_seq, end_seq)` a reader of the window needs, by `seq`: the
/// neighbours that prove the window complete, and the registry entries behind every alias
/// segment that overlaps it.
fn context_entries(
    backend: &mut dyn Backend,
    window: &Window,
    first_seq: u64,
    end_seq: u64,
    tree_size: u64,
) -> Result<BTreeMap<u64, &'static str>, AuditError> {
    let mut context = BTreeMap::new();
    for alias in queries::aliases(backend)? {
        for segment in queries::timeline(backend, &alias.name, window.from, window.to)? {
            context.insert(segment.rotation.seq, "rotation");
            if let Some(deployment) = queries::deployment(backend, &segment.deployment)? {
                context.insert(deployment.registered_seq, "deployment");
            }
            if let Some(checkpoint) = queries::checkpoint(backend, &segment.checkpoint)? {
                context.insert(checkpoint.registered_seq, "checkpoint");
            }
        }
    }
    context.retain(|&seq, _| (seq < first_seq || seq >= end_seq) && seq < tree_size);
    if first_seq > 0 {
        context.insert(first_seq - 1, "before");
    }
    if end_seq < tree_size {
        context.insert(end_seq, "after");
    }
    Ok(context)
}
