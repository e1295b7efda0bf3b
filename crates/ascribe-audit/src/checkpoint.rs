//! One checkpoint's production life: when it served, behind which aliases, and how much.

use ascribe_registry::{queries, CheckpointRecord, DeploymentRecord, DocumentRecord, Segment};
use ascribe_store::query::read;
use ascribe_store::{Backend, SqlValue, StoreError, Tx};
use serde::Serialize;

use crate::alias::count_inferences;
use crate::search::{self, InferenceRow};
use crate::AuditError;

/// At most this many decision references are listed in a checkpoint answer; the count is
/// exact, and `ascribe audit inferences --checkpoint` pages through all of them.
pub const MAX_LISTED_DECISIONS: usize = 100;

/// Everything the ledger holds about one checkpoint's time in production.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointAnswer {
    /// The checkpoint as registered.
    pub checkpoint: CheckpointRecord,
    /// Its card, evaluation profile and lineage, with when each was stored.
    pub documents: Vec<DocumentRecord>,
    /// The deployments that serve it.
    pub deployments: Vec<DeploymentRecord>,
    /// Every period it was behind an alias, oldest first, with the inferences it served then.
    pub periods: Vec<Period>,
    /// Inferences it served, through any alias or called by its id.
    pub inferences: u64,
    /// The first inference it served.
    pub first_inference: Option<InferenceRow>,
    /// The last inference it served.
    pub last_inference: Option<InferenceRow>,
    /// How many distinct decision references its inferences carry.
    pub decisions: u64,
    /// The first of those references, oldest first, at most [`MAX_LISTED_DECISIONS`] (found
    /// among its first 2,000 inferences that carry one).
    pub decision_references: Vec<String>,
    /// `system_fingerprint` values seen with it, with the `seq` each was first seen at.
    pub fingerprints: Vec<Fingerprint>,
}

/// A period during which a checkpoint was behind an alias.
#[derive(Clone, Debug, Serialize)]
pub struct Period {
    /// The alias segment.
    #[serde(flatten)]
    pub segment: Segment,
    /// Inferences through that alias during the segment.
    pub inferences: u64,
}

/// A served `system_fingerprint` and where it was first seen.
#[derive(Clone, Debug, Serialize)]
pub struct Fingerprint {
    /// The fingerprint.
    pub fingerprint: String,
    /// The `seq` of the observation that first recorded it.
    pub first_seq: u64,
}

/// The production life of checkpoint `id`.
pub fn checkpoint(backend: &mut dyn Backend, id: &str) -> Result<CheckpointAnswer, AuditError> {
    let checkpoint = queries::checkpoint(backend, id)?.ok_or_else(|| {
        AuditError::NotFound(format!(
            "no checkpoint `{id}` in this ledger; `ascribe checkpoint list` shows them"
        ))
    })?;
    let documents = crate::inference::documents_of(backend, &checkpoint)?;
    let deployments = queries::deployments(backend)?
        .into_iter()
        .filter(|deployment| deployment.checkpoint == id)
        .collect();

    let mut periods = Vec::new();
    for segment in queries::segments_for_checkpoint(backend, id)? {
        let (alias, start, end) = (
            segment.alias.clone(),
            segment.rotation.seq,
            segment.end_seq.unwrap_or(i64::MAX as u64),
        );
        let inferences = read(backend, |tx| count_inferences(tx, &alias, start, end))?;
        periods.push(Period {
            segment,
            inferences,
        });
    }

    let (inferences, decisions, decision_references, fingerprints) =
        read(backend, |tx| totals(tx, id))?;
    let first_inference = search::edge_of_checkpoint(backend, id, false)?;
    let last_inference = search::edge_of_checkpoint(backend, id, true)?;
    Ok(CheckpointAnswer {
        checkpoint,
        documents,
        deployments,
        periods,
        inferences,
        first_inference,
        last_inference,
        decisions,
        decision_references,
        fingerprints,
    })
}

type Totals = (u64, u64, Vec<String>, Vec<Fingerprint>);

// LIMITATION: the totals scan the checkpoint's entries of the `(checkpoint, seq)` and
// `(checkpoint, decision)` indexes, so this answer takes time in proportion to the
// checkpoint's traffic, unlike the inference, decision and alias-at answers (see the audit
// benchmark for figures). Running counters kept by the projection would make it constant, at
// the price of more writes per inference on the gateway's hot path.

fn totals(tx: &mut dyn Tx, id: &str) -> Result<Totals, StoreError> {
    let key: SqlValue = id.into();
    let count = |tx: &mut dyn Tx, sql: &str| -> Result<u64, StoreError> {
        let row = tx.query_row(sql, std::slice::from_ref(&key))?;
        row.map_or(Ok(0), |row| row[0].count("count"))
    };
    let inferences = count(tx, "SELECT COUNT(*) FROM inferences WHERE checkpoint = $1")?;
    let decisions = count(
        tx,
        "SELECT COUNT(DISTINCT decision) FROM inferences WHERE checkpoint = $1 \
         AND decision IS NOT NULL",
    )?;
    // The first references in ledger order: a short scan of the `(checkpoint, seq)` index,
    // deduplicated here, instead of grouping every inference of the checkpoint.
    let sql = "SELECT decision FROM inferences WHERE checkpoint = $1 AND decision IS NOT NULL \
               ORDER BY seq LIMIT $2";
    let scanned = (MAX_LISTED_DECISIONS * 20) as u64;
    let mut references: Vec<String> = Vec::new();
    for row in tx.query(sql, &[key.clone(), scanned.into()])? {
        let decision = row[0].text("decision")?;
        if references.len() < MAX_LISTED_DECISIONS
            && !references.iter().any(|seen| seen == decision)
        {
            references.push(decision.to_owned());
        }
    }
    let sql = "SELECT fingerprint, first_seq FROM checkpoint_fingerprints WHERE checkpoint = $1 \
               ORDER BY first_seq";
    let fingerprints = tx
        .query(sql, std::slice::from_ref(&key))?
        .iter()
        .map(|row| {
            Ok(Fingerprint {
                fingerprint: row[0].text("fingerprint")?.to_owned(),
                first_seq: row[1].count("first_seq")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((inferences, decisions, references, fingerprints))
}
