//! Keeps the `inferences`, `observations`, `inference_observations` and
//! `checkpoint_fingerprints` tables in step with inference entries.
//!
//! Every index here is keyed by `seq`, not `time`: the writer never lets `time` decrease
//! along `seq`, so a time window is one `seq` range, found once in `ledger_entries`.

use ascribe_ledger::Entry;
use ascribe_store::{Backend, Projection, SqlValue, StoreError, Tx};
use serde_json::Value;

use crate::record::{INFERENCE_COMPLETED, INFERENCE_RECORDED, OBSERVATION_RECORDED};

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS inferences (
    inference_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    time TEXT NOT NULL,
    caller TEXT NOT NULL,
    decision TEXT,
    requested_model TEXT NOT NULL,
    alias TEXT,
    deployment TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    served_model TEXT,
    system_fingerprint TEXT,
    identity_match TEXT NOT NULL,
    status BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    stream BIGINT NOT NULL,
    completed_seq BIGINT,
    completed BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS inferences_seq ON inferences (seq);
CREATE INDEX IF NOT EXISTS inferences_decision ON inferences (decision, seq);
CREATE INDEX IF NOT EXISTS inferences_checkpoint_seq ON inferences (checkpoint, seq);
CREATE INDEX IF NOT EXISTS inferences_checkpoint_decision ON inferences (checkpoint, decision);
CREATE INDEX IF NOT EXISTS inferences_alias_seq ON inferences (alias, seq);
CREATE INDEX IF NOT EXISTS inferences_caller_seq ON inferences (caller, seq);
CREATE TABLE IF NOT EXISTS inference_observations (
    seq BIGINT PRIMARY KEY,
    inference_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inference_observations_inference
    ON inference_observations (inference_id);
CREATE TABLE IF NOT EXISTS observations (
    seq BIGINT PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    deployment TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    inference_id TEXT
);
CREATE INDEX IF NOT EXISTS observations_deployment_seq ON observations (deployment, seq);
CREATE TABLE IF NOT EXISTS inference_payloads (
    digest TEXT PRIMARY KEY,
    content_base64 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deployment_probes (
    deployment TEXT PRIMARY KEY,
    models_sha256 TEXT NOT NULL,
    canary_sha256 TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_fingerprints (
    checkpoint TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    PRIMARY KEY (checkpoint, fingerprint)
)";

// LIMITATION: tables and indexes added here later are created by `ascribe init` (which may be
// run again on an existing ledger), but entries written before they existed are not projected
// into them: there is no re-projection of old entries yet. The `observations` table and the
// `seq`-keyed indexes arrived together with the audit answers.

/// Creates the inference tables if they do not exist.
pub fn create_tables(backend: &mut dyn Backend) -> Result<(), StoreError> {
    backend.write(&mut |tx| {
        for statement in TABLES.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            tx.execute(statement, &[])?;
        }
        Ok(())
    })
}

/// The inference projection; register it on every `Ledger` that records inferences.
pub struct InferenceProjection;

impl Projection for InferenceProjection {
    fn project(&self, tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
        match entry.kind.as_str() {
            INFERENCE_RECORDED => recorded(tx, entry),
            INFERENCE_COMPLETED => completed(tx, entry),
            OBSERVATION_RECORDED => observed(tx, entry),
            _ => Ok(()),
        }
    }
}

fn text(value: &Value, name: &str) -> SqlValue {
    value
        .get(name)
        .and_then(Value::as_str)
        .map_or(SqlValue::Null, SqlValue::from)
}

fn recorded(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    let served = body.get("served").cloned().unwrap_or(Value::Null);
    let status = body.get("status").and_then(Value::as_u64).unwrap_or(0);
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    tx.execute(
        "INSERT INTO inferences (inference_id, seq, time, caller, decision, requested_model, \
         alias, deployment, checkpoint, served_model, system_fingerprint, identity_match, \
         status, outcome, stream) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            text(body, "inference_id"),
            entry.seq.into(),
            entry.time.to_string().into(),
            text(body, "caller"),
            text(body, "decision"),
            text(body, "requested_model"),
            text(body, "alias"),
            text(body, "deployment"),
            text(body, "checkpoint"),
            text(&served, "model"),
            text(&served, "system_fingerprint"),
            text(body, "identity_match"),
            status.into(),
            text(body, "outcome"),
            SqlValue::Integer(stream.into()),
        ],
    )?;
    Ok(())
}

fn completed(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    let completed = body
        .get("completed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    tx.execute(
        "UPDATE inferences SET completed_seq = $1, completed = $2 WHERE inference_id = $3",
        &[
            entry.seq.into(),
            SqlValue::Integer(completed.into()),
            text(body, "inference_id"),
        ],
    )?;
    Ok(())
}

fn observed(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    tx.execute(
        "INSERT INTO observations (seq, time, kind, deployment, checkpoint, inference_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            entry.seq.into(),
            entry.time.to_string().into(),
            text(body, "kind"),
            text(body, "deployment"),
            text(body, "checkpoint"),
            text(body, "inference_id"),
        ],
    )?;
    if body.get("inference_id").is_none_or(Value::is_null) {
        return probed(tx, entry);
    }
    tx.execute(
        "INSERT INTO inference_observations (seq, inference_id, kind, checkpoint, time) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            entry.seq.into(),
            text(body, "inference_id"),
            text(body, "kind"),
            text(body, "checkpoint"),
            entry.time.to_string().into(),
        ],
    )?;
    if let SqlValue::Text(fingerprint) = text(body, "system_fingerprint") {
        tx.execute(
            "INSERT INTO checkpoint_fingerprints (checkpoint, fingerprint, first_seq) \
             VALUES ($1, $2, $3) ON CONFLICT (checkpoint, fingerprint) DO NOTHING",
            &[
                text(body, "checkpoint"),
                fingerprint.into(),
                entry.seq.into(),
            ],
        )?;
    }
    Ok(())
}

/// An identity probe's observation: the deployment's latest probe answers.
fn probed(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let body = &entry.body;
    tx.execute(
        "INSERT INTO deployment_probes (deployment, models_sha256, canary_sha256, seq) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (deployment) DO UPDATE SET \
         models_sha256 = excluded.models_sha256, canary_sha256 = excluded.canary_sha256, \
         seq = excluded.seq",
        &[
            text(body, "deployment"),
            text(body, "models_sha256"),
            text(body, "canary_sha256"),
            entry.seq.into(),
        ],
    )?;
    Ok(())
}
