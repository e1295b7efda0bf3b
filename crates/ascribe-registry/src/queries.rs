//! Reads of the registry: records, alias histories and as-of resolution.
//!
//! Resolution is half-open: an alias's segment covers `[from, to)`, so at the exact instant
//! of a rotation the alias already resolves to the new deployment. When several changes share
//! one microsecond, the one with the higher `seq` wins.

use ascribe_ledger::Timestamp;
use ascribe_store::query::read;
use ascribe_store::{Backend, SqlValue, StoreError, Tx};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;

use crate::changes::optional_text;
use crate::model::{
    AliasRecord, CheckpointRecord, DeploymentRecord, DocumentRecord, Segment, SegmentCause,
};

const SELECT_CHECKPOINT: &str = "SELECT id, kind, provider, snapshot, manifest_json, card_json, \
    evaluation_json, lineage_json, note, registered_seq, registered_at, registered_by \
    FROM registry_checkpoints";
const SELECT_DEPLOYMENT: &str = "SELECT name, checkpoint, dialect, base_url, upstream_model, \
    expect_served, api_key_env, moving_name, retention, registered_seq, registered_at, \
    registered_by FROM registry_deployments";
const SELECT_ALIAS: &str = "SELECT name, deployment, require_evidence, on_mismatch, created_seq, \
    created_at, created_by, answer_model FROM registry_aliases";
const SELECT_SEGMENT: &str = "SELECT alias, start_time, end_time, deployment, checkpoint, kind, \
    actor, reason, evidence_json, start_seq, end_seq FROM registry_alias_segments";

fn parse<T: std::str::FromStr<Err = String>>(
    value: &SqlValue,
    column: &str,
) -> Result<T, StoreError> {
    value
        .text(column)?
        .parse()
        .map_err(|problem| StoreError::Column {
            column: column.to_owned(),
            problem,
        })
}

fn parse_json<T: DeserializeOwned>(
    value: &SqlValue,
    column: &str,
) -> Result<Option<T>, StoreError> {
    optional_text(value, column)?
        .map(|text| {
            serde_json::from_str(&text).map_err(|error| StoreError::Column {
                column: column.to_owned(),
                problem: error.to_string(),
            })
        })
        .transpose()
}

fn checkpoint_record(row: &[SqlValue]) -> Result<CheckpointRecord, StoreError> {
    Ok(CheckpointRecord {
        id: row[0].text("id")?.to_owned(),
        kind: parse(&row[1], "kind")?,
        provider: optional_text(&row[2], "provider")?,
        snapshot: optional_text(&row[3], "snapshot")?,
        manifest: parse_json(&row[4], "manifest_json")?,
        card: parse_json(&row[5], "card_json")?,
        evaluation: parse_json(&row[6], "evaluation_json")?,
        lineage: parse_json(&row[7], "lineage_json")?,
        note: optional_text(&row[8], "note")?,
        registered_seq: row[9].count("registered_seq")?,
        registered_at: row[10].text("registered_at")?.to_owned(),
        registered_by: row[11].text("registered_by")?.to_owned(),
    })
}

fn deployment_record(row: &[SqlValue]) -> Result<DeploymentRecord, StoreError> {
    Ok(DeploymentRecord {
        name: row[0].text("name")?.to_owned(),
        checkpoint: row[1].text("checkpoint")?.to_owned(),
        dialect: parse(&row[2], "dialect")?,
        base_url: row[3].text("base_url")?.to_owned(),
        upstream_model: row[4].text("upstream_model")?.to_owned(),
        expect_served: row[5].text("expect_served")?.to_owned(),
        api_key_env: optional_text(&row[6], "api_key_env")?,
        moving_name: row[7].integer("moving_name")? != 0,
        retention: parse(&row[8], "retention")?,
        registered_seq: row[9].count("registered_seq")?,
        registered_at: row[10].text("registered_at")?.to_owned(),
        registered_by: row[11].text("registered_by")?.to_owned(),
    })
}

fn alias_record(row: &[SqlValue]) -> Result<AliasRecord, StoreError> {
    Ok(AliasRecord {
        name: row[0].text("name")?.to_owned(),
        deployment: row[1].text("deployment")?.to_owned(),
        require_evidence: row[2].integer("require_evidence")? != 0,
        on_mismatch: parse(&row[3], "on_mismatch")?,
        created_seq: row[4].count("created_seq")?,
        created_at: row[5].text("created_at")?.to_owned(),
        created_by: row[6].text("created_by")?.to_owned(),
        answer_model: parse(&row[7], "answer_model")?,
    })
}

fn segment(row: &[SqlValue]) -> Result<Segment, StoreError> {
    Ok(Segment {
        alias: row[0].text("alias")?.to_owned(),
        from: row[1].text("start_time")?.to_owned(),
        to: optional_text(&row[2], "end_time")?,
        deployment: row[3].text("deployment")?.to_owned(),
        checkpoint: row[4].text("checkpoint")?.to_owned(),
        rotation: SegmentCause {
            kind: row[5].text("kind")?.to_owned(),
            actor: row[6].text("actor")?.to_owned(),
            reason: optional_text(&row[7], "reason")?,
            evidence: parse_json(&row[8], "evidence_json")?,
            seq: row[9].count("start_seq")?,
        },
        end_seq: match &row[10] {
            SqlValue::Null => None,
            value => Some(value.count("end_seq")?),
        },
    })
}

fn one<T>(
    tx: &mut dyn Tx,
    sql: &str,
    key: &str,
    convert: fn(&[SqlValue]) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    tx.query_row(sql, &[key.into()])?
        .map(|row| convert(&row))
        .transpose()
}

fn all<T>(
    backend: &mut dyn Backend,
    sql: &str,
    params: &[SqlValue],
    convert: fn(&[SqlValue]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    read(backend, |tx| {
        tx.query(sql, params)?
            .iter()
            .map(|row| convert(row))
            .collect()
    })
}

/// Whether a document with this digest is stored.
pub fn document_exists(tx: &mut dyn Tx, digest: &str) -> Result<bool, StoreError> {
    let sql = "SELECT digest FROM registry_documents WHERE digest = $1";
    Ok(tx.query_row(sql, &[digest.into()])?.is_some())
}

/// What the registry holds about a stored document (not its bytes): its role, name, size and
/// when it was stored.
pub fn document(
    backend: &mut dyn Backend,
    digest: &str,
) -> Result<Option<DocumentRecord>, StoreError> {
    let sql = "SELECT digest, name, size, role, media_type, stored_seq, stored_at \
               FROM registry_documents WHERE digest = $1";
    read(backend, |tx| {
        tx.query_row(sql, &[digest.into()])?
            .map(|row| {
                Ok(DocumentRecord {
                    digest: row[0].text("digest")?.to_owned(),
                    name: row[1].text("name")?.to_owned(),
                    size: row[2].count("size")?,
                    role: row[3].text("role")?.to_owned(),
                    media_type: row[4].text("media_type")?.to_owned(),
                    stored_seq: row[5].count("stored_seq")?,
                    stored_at: row[6].text("stored_at")?.to_owned(),
                })
            })
            .transpose()
    })
}

/// The bytes of a stored document.
pub fn document_content(
    backend: &mut dyn Backend,
    digest: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    read(backend, |tx| {
        let sql = "SELECT content_base64 FROM registry_document_contents WHERE digest = $1";
        let Some(row) = tx.query_row(sql, &[digest.into()])? else {
            return Ok(None);
        };
        let decoded = BASE64
            .decode(row[0].text("content_base64")?)
            .map_err(|error| StoreError::Column {
                column: "content_base64".into(),
                problem: error.to_string(),
            })?;
        Ok(Some(decoded))
    })
}

/// The checkpoint with this id, inside a transaction.
pub fn find_checkpoint(tx: &mut dyn Tx, id: &str) -> Result<Option<CheckpointRecord>, StoreError> {
    one(
        tx,
        &format!("{SELECT_CHECKPOINT} WHERE id = $1"),
        id,
        checkpoint_record,
    )
}

/// The deployment with this name, inside a transaction.
pub fn find_deployment(
    tx: &mut dyn Tx,
    name: &str,
) -> Result<Option<DeploymentRecord>, StoreError> {
    one(
        tx,
        &format!("{SELECT_DEPLOYMENT} WHERE name = $1"),
        name,
        deployment_record,
    )
}

/// The alias with this name, inside a transaction.
pub fn find_alias(tx: &mut dyn Tx, name: &str) -> Result<Option<AliasRecord>, StoreError> {
    one(
        tx,
        &format!("{SELECT_ALIAS} WHERE name = $1"),
        name,
        alias_record,
    )
}

/// Where a requested model name leads, inside a transaction: the alias of that name and its
/// current deployment, else the oldest deployment serving the checkpoint with that id (with
/// no alias). `None` when the name is neither.
pub fn find_route(
    tx: &mut dyn Tx,
    name: &str,
) -> Result<Option<(Option<AliasRecord>, DeploymentRecord)>, StoreError> {
    if let Some(alias) = find_alias(tx, name)? {
        let deployment = find_deployment(tx, &alias.deployment)?;
        return Ok(deployment.map(|deployment| (Some(alias), deployment)));
    }
    let serving = one(
        tx,
        &format!("{SELECT_DEPLOYMENT} WHERE checkpoint = $1 ORDER BY registered_seq LIMIT 1"),
        name,
        deployment_record,
    )?;
    Ok(serving.map(|deployment| (None, deployment)))
}

/// The deployment an alias pointed at just before its current one.
pub fn previous_deployment(tx: &mut dyn Tx, alias: &str) -> Result<Option<String>, StoreError> {
    let sql = "SELECT deployment FROM registry_alias_segments \
               WHERE alias = $1 AND end_seq IS NOT NULL ORDER BY start_seq DESC LIMIT 1";
    tx.query_row(sql, &[alias.into()])?
        .map(|row| row[0].text("deployment").map(str::to_owned))
        .transpose()
}

/// Every checkpoint, oldest first.
pub fn checkpoints(backend: &mut dyn Backend) -> Result<Vec<CheckpointRecord>, StoreError> {
    all(
        backend,
        &format!("{SELECT_CHECKPOINT} ORDER BY registered_seq"),
        &[],
        checkpoint_record,
    )
}

/// One checkpoint.
pub fn checkpoint(
    backend: &mut dyn Backend,
    id: &str,
) -> Result<Option<CheckpointRecord>, StoreError> {
    read(backend, |tx| find_checkpoint(tx, id))
}

/// Every deployment, oldest first.
pub fn deployments(backend: &mut dyn Backend) -> Result<Vec<DeploymentRecord>, StoreError> {
    all(
        backend,
        &format!("{SELECT_DEPLOYMENT} ORDER BY registered_seq"),
        &[],
        deployment_record,
    )
}

/// One deployment.
pub fn deployment(
    backend: &mut dyn Backend,
    name: &str,
) -> Result<Option<DeploymentRecord>, StoreError> {
    read(backend, |tx| find_deployment(tx, name))
}

/// Every alias, by name.
pub fn aliases(backend: &mut dyn Backend) -> Result<Vec<AliasRecord>, StoreError> {
    all(
        backend,
        &format!("{SELECT_ALIAS} ORDER BY name"),
        &[],
        alias_record,
    )
}

/// One alias.
pub fn alias(backend: &mut dyn Backend, name: &str) -> Result<Option<AliasRecord>, StoreError> {
    read(backend, |tx| find_alias(tx, name))
}

/// An alias's whole history, oldest segment first.
pub fn history(backend: &mut dyn Backend, alias: &str) -> Result<Vec<Segment>, StoreError> {
    let sql = format!("{SELECT_SEGMENT} WHERE alias = $1 ORDER BY start_time, start_seq");
    all(backend, &sql, &[alias.into()], segment)
}

/// The segment in force for `alias` at `instant`, or `None` if the alias did not exist yet.
/// One indexed lookup, whatever the length of the history.
pub fn resolve_at(
    backend: &mut dyn Backend,
    alias: &str,
    instant: Timestamp,
) -> Result<Option<Segment>, StoreError> {
    let sql = format!(
        "{SELECT_SEGMENT} WHERE alias = $1 AND start_time <= $2 \
         ORDER BY start_time DESC, start_seq DESC LIMIT 1"
    );
    read(backend, |tx| {
        let params = [alias.into(), instant.to_string().into()];
        tx.query_row(&sql, &params)?
            .map(|row| segment(&row))
            .transpose()
    })
}

/// The latest segment of `alias` that pointed at `deployment` and started before entry `seq`:
/// the creation or rotation that put that deployment behind the alias for an inference
/// recorded at `seq`. One lookup on the segments' primary key.
pub fn segment_before(
    backend: &mut dyn Backend,
    alias: &str,
    deployment: &str,
    seq: u64,
) -> Result<Option<Segment>, StoreError> {
    let sql = format!(
        "{SELECT_SEGMENT} WHERE alias = $1 AND start_seq < $2 AND deployment = $3 \
         ORDER BY start_seq DESC LIMIT 1"
    );
    read(backend, |tx| {
        let params = [alias.into(), seq.into(), deployment.into()];
        tx.query_row(&sql, &params)?
            .map(|row| segment(&row))
            .transpose()
    })
}

/// The segments of `alias` that overlap `[from, to)`, oldest first: the one in force at
/// `from`, then those that start inside the window. Both are index range scans, so the cost
/// follows the window, not the length of the history.
pub fn timeline(
    backend: &mut dyn Backend,
    alias: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Segment>, StoreError> {
    let mut segments: Vec<Segment> = resolve_at(backend, alias, from)?.into_iter().collect();
    let sql = format!(
        "{SELECT_SEGMENT} WHERE alias = $1 AND start_time > $2 AND start_time < $3 \
         ORDER BY start_time, start_seq"
    );
    let params = [alias.into(), from.to_string().into(), to.to_string().into()];
    segments.extend(all(backend, &sql, &params, segment)?);
    Ok(segments)
}

/// Every segment, of any alias, during which `checkpoint` served: where and when it was in
/// production.
pub fn segments_for_checkpoint(
    backend: &mut dyn Backend,
    checkpoint: &str,
) -> Result<Vec<Segment>, StoreError> {
    let sql = format!("{SELECT_SEGMENT} WHERE checkpoint = $1 ORDER BY start_time, start_seq");
    all(backend, &sql, &[checkpoint.into()], segment)
}
