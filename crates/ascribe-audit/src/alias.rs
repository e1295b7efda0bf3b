//! An alias through time: the segment in force at an instant, or every segment of a window
//! with what each served.

use ascribe_inference::queries::ObservationView;
use ascribe_ledger::Timestamp;
use ascribe_registry::{queries, CheckpointRecord, DeploymentRecord, DocumentRecord, Segment};
use ascribe_store::query::read;
use ascribe_store::{Backend, StoreError, Tx};
use serde::Serialize;

use crate::window::seq_range;
use crate::{AuditError, Window};

/// Observation kinds that mean a deployment may no longer serve what the registry says.
pub const DRIFT_KINDS: [&str; 3] = [
    "served_model_mismatch",
    "new_system_fingerprint",
    "identity_probe_changed",
];

/// At most this many drift observations are listed in one window answer; the count is exact.
pub const MAX_LISTED_OBSERVATIONS: usize = 1000;

/// What an alias resolved to at one instant.
#[derive(Clone, Debug, Serialize)]
pub struct AliasAtAnswer {
    /// The alias.
    pub alias: String,
    /// The instant asked about.
    pub at: String,
    /// The segment in force, or `None` when the alias did not exist yet.
    pub segment: Option<SegmentInForce>,
    /// The deployment as registered.
    pub deployment_record: Option<DeploymentRecord>,
    /// The checkpoint as registered.
    pub checkpoint_record: Option<CheckpointRecord>,
    /// The checkpoint's card, evaluation profile and lineage.
    pub documents: Vec<DocumentRecord>,
}

/// The segment in force at an instant.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentInForce {
    /// The segment.
    #[serde(flatten)]
    pub segment: Segment,
    /// Whether its deployment calls its upstream by a moving name.
    pub moving_name: bool,
}

/// An alias over a window of time.
#[derive(Clone, Debug, Serialize)]
pub struct AliasWindowAnswer {
    /// The alias.
    pub alias: String,
    /// The window.
    pub window: Window,
    /// The segments overlapping the window, oldest first.
    pub segments: Vec<SegmentAnswer>,
    /// Parts of the window when the alias did not exist.
    pub gaps: Vec<Gap>,
    /// Drift observations of the segments' deployments while they were behind the alias,
    /// oldest first, at most [`MAX_LISTED_OBSERVATIONS`].
    pub observations: Vec<ObservationView>,
    /// The number of such observations, listed or not.
    pub observation_count: u64,
}

impl AliasWindowAnswer {
    /// The checkpoints the alias served during the window, in order of first appearance.
    pub fn checkpoints(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for segment in &self.segments {
            if !seen.contains(&segment.segment.checkpoint.as_str()) {
                seen.push(&segment.segment.checkpoint);
            }
        }
        seen
    }
}

/// One segment of an alias's history, as seen from a window.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentAnswer {
    /// The segment.
    #[serde(flatten)]
    pub segment: Segment,
    /// Whether its deployment calls its upstream by a moving name.
    pub moving_name: bool,
    /// Inferences through this alias the segment served inside the window.
    pub inferences: u64,
}

/// A stretch of time when an alias did not exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// When it began.
    pub from: String,
    /// When it ended.
    pub to: String,
}

fn require_alias(backend: &mut dyn Backend, alias: &str) -> Result<(), AuditError> {
    if queries::alias(backend, alias)?.is_none() {
        return Err(AuditError::NotFound(format!(
            "no alias `{alias}` in this ledger; `ascribe alias list` shows them"
        )));
    }
    Ok(())
}

/// What `alias` resolved to at `at`: one indexed lookup, plus the records it names.
pub fn at(
    backend: &mut dyn Backend,
    alias: &str,
    at: Timestamp,
) -> Result<AliasAtAnswer, AuditError> {
    require_alias(backend, alias)?;
    let segment = queries::resolve_at(backend, alias, at)?;
    let mut answer = AliasAtAnswer {
        alias: alias.to_owned(),
        at: at.to_string(),
        segment: None,
        deployment_record: None,
        checkpoint_record: None,
        documents: Vec::new(),
    };
    let Some(segment) = segment else {
        return Ok(answer);
    };
    answer.deployment_record = queries::deployment(backend, &segment.deployment)?;
    let moving_name = answer
        .deployment_record
        .as_ref()
        .is_some_and(|deployment| deployment.moving_name);
    answer.checkpoint_record = queries::checkpoint(backend, &segment.checkpoint)?;
    if let Some(checkpoint) = &answer.checkpoint_record {
        answer.documents = crate::inference::documents_of(backend, checkpoint)?;
    }
    answer.segment = Some(SegmentInForce {
        segment,
        moving_name,
    });
    Ok(answer)
}

/// `alias` over `window`: its segments with the inferences each served in the window, drift
/// observations, and gaps. Counting reads the `(alias, seq)` index over the window's range.
pub fn window(
    backend: &mut dyn Backend,
    alias: &str,
    window: Window,
) -> Result<AliasWindowAnswer, AuditError> {
    require_alias(backend, alias)?;
    let segments = queries::timeline(backend, alias, window.from, window.to)?;

    let (window_start, window_end) = read(backend, |tx| seq_range(tx, &window))?;
    let mut answers = Vec::with_capacity(segments.len());
    let mut observation_seqs = Vec::new();
    for segment in segments {
        let start = segment.rotation.seq.max(window_start);
        let end = segment.end_seq.unwrap_or(u64::MAX).min(window_end);
        let deployment = queries::deployment(backend, &segment.deployment)?;
        let (inferences, drift) = read(backend, |tx| {
            let counted = count_inferences(tx, alias, start, end)?;
            let drift = drift_observations(tx, &segment.deployment, start, end)?;
            Ok((counted, drift))
        })?;
        observation_seqs.extend(drift);
        answers.push(SegmentAnswer {
            moving_name: deployment.is_some_and(|deployment| deployment.moving_name),
            inferences,
            segment,
        });
    }

    observation_seqs.sort_unstable();
    observation_seqs.dedup();
    let observation_count = observation_seqs.len() as u64;
    observation_seqs.truncate(MAX_LISTED_OBSERVATIONS);
    let observations = read(backend, |tx| {
        observation_seqs
            .iter()
            .map(|&seq| {
                let (entry, _) = ascribe_inference::queries::entry_at(tx, seq)?;
                Ok(ObservationView {
                    seq,
                    time: entry.time.to_string(),
                    body: entry.body,
                })
            })
            .collect()
    })?;

    Ok(AliasWindowAnswer {
        alias: alias.to_owned(),
        gaps: gaps(&window, &answers),
        window,
        segments: answers,
        observations,
        observation_count,
    })
}

/// Inferences through `alias` recorded at `seq` in `[start, end)`: a count over the
/// `(alias, seq)` index.
pub(crate) fn count_inferences(
    tx: &mut dyn Tx,
    alias: &str,
    start: u64,
    end: u64,
) -> Result<u64, StoreError> {
    if start >= end {
        return Ok(0);
    }
    let sql = "SELECT COUNT(*) FROM inferences WHERE alias = $1 AND seq >= $2 AND seq < $3";
    let row = tx.query_row(sql, &[alias.into(), start.into(), end.into()])?;
    row.map_or(Ok(0), |row| row[0].count("count"))
}

/// The `seq` of each drift observation of `deployment` in `[start, end)`.
fn drift_observations(
    tx: &mut dyn Tx,
    deployment: &str,
    start: u64,
    end: u64,
) -> Result<Vec<u64>, StoreError> {
    if start >= end {
        return Ok(Vec::new());
    }
    let sql = "SELECT seq, kind FROM observations WHERE deployment = $1 AND seq >= $2 \
               AND seq < $3 ORDER BY seq";
    let rows = tx.query(sql, &[deployment.into(), start.into(), end.into()])?;
    let mut seqs = Vec::new();
    for row in rows {
        if DRIFT_KINDS.contains(&row[1].text("kind")?) {
            seqs.push(row[0].count("seq")?);
        }
    }
    Ok(seqs)
}

/// The parts of `window` that no segment covers. Aliases are never deleted, so in practice
/// this is the stretch before the alias was created.
fn gaps(window: &Window, segments: &[SegmentAnswer]) -> Vec<Gap> {
    let window_from = window.from.to_string();
    let window_to = window.to.to_string();
    let mut covered_until = window_from.clone();
    let mut gaps = Vec::new();
    for answer in segments {
        let segment = &answer.segment;
        if segment.from > covered_until {
            gaps.push(Gap {
                from: covered_until.clone(),
                to: segment.from.clone().min(window_to.clone()),
            });
        }
        let end = segment.to.clone().unwrap_or_else(|| window_to.clone());
        covered_until = covered_until.max(end);
    }
    if covered_until < window_to {
        gaps.push(Gap {
            from: covered_until,
            to: window_to,
        });
    }
    gaps
}
