//! Keeps the `registry_*` tables in step with registry entries.

use ascribe_ledger::Entry;
use ascribe_store::{Projection, SqlValue, StoreError, Tx};
use serde_json::Value;

use crate::changes::{
    ALIAS_CREATED, ALIAS_ROTATED, CHECKPOINT_REGISTERED, DEPLOYMENT_REGISTERED, DOCUMENT_STORED,
};

/// The registry's projection; register it on every `Ledger` that may write registry entries.
pub struct RegistryProjection;

impl Projection for RegistryProjection {
    fn project(&self, tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
        match entry.kind.as_str() {
            DOCUMENT_STORED => document_stored(tx, entry),
            CHECKPOINT_REGISTERED => checkpoint_registered(tx, entry),
            DEPLOYMENT_REGISTERED => deployment_registered(tx, entry),
            ALIAS_CREATED => alias_created(tx, entry),
            ALIAS_ROTATED => alias_rotated(tx, entry),
            _ => Ok(()),
        }
    }
}

fn text(body: &Value, name: &str) -> SqlValue {
    body.get(name)
        .and_then(Value::as_str)
        .map_or(SqlValue::Null, SqlValue::from)
}

fn json_text(body: &Value, name: &str) -> SqlValue {
    match body.get(name) {
        None | Some(Value::Null) => SqlValue::Null,
        Some(value) => SqlValue::Text(value.to_string()),
    }
}

fn flag(body: &Value, name: &str) -> SqlValue {
    SqlValue::Integer(
        body.get(name)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .into(),
    )
}

fn provenance(entry: &Entry) -> [SqlValue; 3] {
    [
        entry.seq.into(),
        entry.time.to_string().into(),
        entry.actor.as_str().into(),
    ]
}

fn document_stored(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    let size = body.get("size").and_then(Value::as_u64).unwrap_or(0);
    let [seq, time, _] = provenance(entry);
    tx.execute(
        "INSERT INTO registry_documents (digest, name, size, role, media_type, stored_seq, \
         stored_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO NOTHING",
        &[
            text(body, "digest"),
            text(body, "name"),
            size.into(),
            text(body, "role"),
            text(body, "media_type"),
            seq,
            time,
        ],
    )?;
    Ok(())
}

fn checkpoint_registered(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    let [seq, time, actor] = provenance(entry);
    tx.execute(
        "INSERT INTO registry_checkpoints (id, kind, provider, snapshot, manifest_json, \
         card_json, evaluation_json, lineage_json, note, registered_seq, registered_at, \
         registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            text(body, "id"),
            text(body, "kind"),
            text(body, "provider"),
            text(body, "snapshot"),
            json_text(body, "manifest"),
            json_text(body, "card"),
            json_text(body, "evaluation"),
            json_text(body, "lineage"),
            text(body, "note"),
            seq,
            time,
            actor,
        ],
    )?;
    Ok(())
}

fn deployment_registered(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    let [seq, time, actor] = provenance(entry);
    tx.execute(
        "INSERT INTO registry_deployments (name, checkpoint, dialect, base_url, upstream_model, \
         expect_served, api_key_env, moving_name, retention, registered_seq, registered_at, \
         registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            text(body, "name"),
            text(body, "checkpoint"),
            text(body, "dialect"),
            text(body, "base_url"),
            text(body, "upstream_model"),
            text(body, "expect_served"),
            text(body, "api_key_env"),
            flag(body, "moving_name"),
            text(body, "retention"),
            seq,
            time,
            actor,
        ],
    )?;
    Ok(())
}

fn alias_created(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    let [seq, time, actor] = provenance(entry);
    tx.execute(
        "INSERT INTO registry_aliases (name, deployment, require_evidence, on_mismatch, \
         current_seq, created_seq, created_at, created_by, answer_model) \
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, COALESCE($8, 'served'))",
        &[
            text(body, "alias"),
            text(body, "deployment"),
            flag(body, "require_evidence"),
            text(body, "on_mismatch"),
            seq.clone(),
            time.clone(),
            actor.clone(),
            text(body, "answer_model"),
        ],
    )?;
    let segment = NewSegment {
        deployment: text(body, "deployment"),
        checkpoint: text(body, "checkpoint"),
        kind: "created".into(),
        reason: SqlValue::Null,
        evidence: SqlValue::Null,
    };
    insert_segment(tx, entry, text(body, "alias"), segment)
}

fn alias_rotated(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    let to = body.get("to").cloned().unwrap_or(Value::Null);
    // The open segment is found through the alias's `current_seq`, a primary-key lookup,
    // so a rotation costs the same however long the history is.
    tx.execute(
        "UPDATE registry_alias_segments SET end_seq = $1, end_time = $2 WHERE alias = $3 \
         AND start_seq = (SELECT current_seq FROM registry_aliases WHERE name = $3)",
        &[
            entry.seq.into(),
            entry.time.to_string().into(),
            text(body, "alias"),
        ],
    )?;
    tx.execute(
        "UPDATE registry_aliases SET deployment = $1, current_seq = $2 WHERE name = $3",
        &[
            text(&to, "deployment"),
            entry.seq.into(),
            text(body, "alias"),
        ],
    )?;
    let segment = NewSegment {
        deployment: text(&to, "deployment"),
        checkpoint: text(&to, "checkpoint"),
        kind: text(body, "kind"),
        reason: text(body, "reason"),
        evidence: json_text(body, "evidence"),
    };
    insert_segment(tx, entry, text(body, "alias"), segment)
}

struct NewSegment {
    deployment: SqlValue,
    checkpoint: SqlValue,
    kind: SqlValue,
    reason: SqlValue,
    evidence: SqlValue,
}

fn insert_segment(
    tx: &mut dyn Tx,
    entry: &Entry,
    alias: SqlValue,
    segment: NewSegment,
) -> Result<(), StoreError> {
    let [seq, time, actor] = provenance(entry);
    tx.execute(
        "INSERT INTO registry_alias_segments (alias, start_seq, start_time, deployment, \
         checkpoint, kind, actor, reason, evidence_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            alias,
            seq,
            time,
            segment.deployment,
            segment.checkpoint,
            segment.kind,
            actor,
            segment.reason,
            segment.evidence,
        ],
    )?;
    Ok(())
}
