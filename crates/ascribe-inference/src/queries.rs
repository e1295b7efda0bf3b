//! Reads of inference records, by inference id and by decision reference.

use ascribe_ledger::{Entry, Hash};
use ascribe_store::query::read;
use ascribe_store::{Backend, StoreError, Tx};
use serde::Serialize;
use serde_json::Value;

use crate::record::{CompletionRecord, InferenceRecord};

/// An inference with everything the ledger holds about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InferenceView {
    /// The `seq` of its `inference.recorded` entry.
    pub seq: u64,
    /// When it was recorded.
    pub time: String,
    /// That entry's leaf hash.
    #[serde(serialize_with = "hex_hash")]
    pub leaf_hash: Hash,
    /// The record.
    pub record: InferenceRecord,
    /// How its stream ended, for streamed answers that ended.
    pub completion: Option<CompletionView>,
    /// Observations it revealed.
    pub observations: Vec<ObservationView>,
}

/// An `inference.completed` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompletionView {
    /// Its `seq`.
    pub seq: u64,
    /// Its leaf hash.
    #[serde(serialize_with = "hex_hash")]
    pub leaf_hash: Hash,
    /// Its body.
    pub record: CompletionRecord,
}

/// An `observation.recorded` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObservationView {
    /// Its `seq`.
    pub seq: u64,
    /// When it was recorded.
    pub time: String,
    /// Its body.
    pub body: Value,
}

fn hex_hash<S: serde::Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(hash))
}

/// The inference with this id.
pub fn inference(
    backend: &mut dyn Backend,
    inference_id: &str,
) -> Result<Option<InferenceView>, StoreError> {
    read(backend, |tx| {
        let sql = "SELECT seq FROM inferences WHERE inference_id = $1";
        match tx.query_row(sql, &[inference_id.into()])? {
            Some(row) => view(tx, row[0].count("seq")?).map(Some),
            None => Ok(None),
        }
    })
}

/// Every inference sent with this decision reference, oldest first.
pub fn by_decision(
    backend: &mut dyn Backend,
    decision: &str,
) -> Result<Vec<InferenceView>, StoreError> {
    read(backend, |tx| {
        let sql = "SELECT seq FROM inferences WHERE decision = $1 ORDER BY seq";
        let rows = tx.query(sql, &[decision.into()])?;
        rows.iter()
            .map(|row| view(tx, row[0].count("seq")?))
            .collect()
    })
}

fn view(tx: &mut dyn Tx, seq: u64) -> Result<InferenceView, StoreError> {
    let (entry, leaf_hash) = entry_at(tx, seq)?;
    let record: InferenceRecord = body_of(&entry)?;
    let sql = "SELECT completed_seq FROM inferences WHERE inference_id = $1";
    let completion = match tx.query_row(sql, &[record.inference_id.as_str().into()])? {
        Some(row) if row[0] != ascribe_store::SqlValue::Null => {
            let seq = row[0].count("completed_seq")?;
            let (entry, leaf_hash) = entry_at(tx, seq)?;
            Some(CompletionView {
                seq,
                leaf_hash,
                record: body_of(&entry)?,
            })
        }
        _ => None,
    };
    let sql = "SELECT seq FROM inference_observations WHERE inference_id = $1 ORDER BY seq";
    let mut observations = Vec::new();
    for row in tx.query(sql, &[record.inference_id.as_str().into()])? {
        let (entry, _) = entry_at(tx, row[0].count("seq")?)?;
        observations.push(ObservationView {
            seq: entry.seq,
            time: entry.time.to_string(),
            body: entry.body,
        });
    }
    Ok(InferenceView {
        seq,
        time: entry.time.to_string(),
        leaf_hash,
        record,
        completion,
        observations,
    })
}

/// A kept request or response body, by its `sha256:<hex>` digest.
pub fn payload(backend: &mut dyn Backend, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
    use base64::Engine as _;
    read(backend, |tx| {
        let sql = "SELECT content_base64 FROM inference_payloads WHERE digest = $1";
        let Some(row) = tx.query_row(sql, &[digest.into()])? else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(row[0].text("content_base64")?)
            .map_err(|error| StoreError::Column {
                column: "inference_payloads.content_base64".into(),
                problem: error.to_string(),
            })?;
        Ok(Some(decoded))
    })
}

/// The entry at `seq`, parsed from its canonical bytes, and its stored leaf hash.
pub fn entry_at(tx: &mut dyn Tx, seq: u64) -> Result<(Entry, Hash), StoreError> {
    let sql = "SELECT entry, leaf_hash FROM ledger_entries WHERE seq = $1";
    let row = tx
        .query_row(sql, &[seq.into()])?
        .ok_or_else(|| StoreError::Inconsistent(format!("entry seq {seq} is missing")))?;
    let entry = Entry::from_canonical_bytes(row[0].text("entry")?.as_bytes())?;
    Ok((entry, row[1].hash("leaf_hash")?))
}

fn body_of<T: serde::de::DeserializeOwned>(entry: &Entry) -> Result<T, StoreError> {
    serde_json::from_value(entry.body.clone()).map_err(|error| StoreError::Column {
        column: format!("entry seq {} body", entry.seq),
        problem: error.to_string(),
    })
}
