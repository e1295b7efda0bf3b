//! One inference, or every inference of one decision: what was asked, what served it, why that
//! checkpoint was there, and the proof that the record is in the ledger.

use ascribe_inference::queries::{CompletionView, InferenceView, ObservationView};
use ascribe_inference::{InferenceRecord, Receipt};
use ascribe_ledger::NoteSigner;
use ascribe_registry::{queries, CheckpointRecord, DeploymentRecord, DocumentRecord, Segment};
use ascribe_store::query::{self, read};
use ascribe_store::Backend;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use crate::AuditError;

/// Everything an auditor asks about one inference: the recorded body, flattened, and what the
/// rest of the ledger says about it.
#[derive(Clone, Debug, Serialize)]
pub struct InferenceAnswer {
    /// Its entry's position in the ledger.
    pub seq: u64,
    /// When it was recorded.
    pub time: String,
    /// The `inference.recorded` body: who asked for what, what served it, what was released.
    #[serde(flatten)]
    pub record: InferenceRecord,
    /// The model the provider said it served (from the answer, or the stream's end).
    pub served_model: Option<String>,
    /// The provider's `system_fingerprint`, if any.
    pub system_fingerprint: Option<String>,
    /// How a streamed answer ended.
    pub completion: Option<CompletionView>,
    /// Observations this inference revealed (a mismatch, a new fingerprint).
    pub observations: Vec<ObservationView>,
    /// The deployment's identity probes just before and just after this inference.
    pub deployment_observations: ProbesAround,
    /// The deployment as registered.
    pub deployment_record: Option<DeploymentRecord>,
    /// The checkpoint as registered.
    pub checkpoint_record: Option<CheckpointRecord>,
    /// The checkpoint's card, evaluation profile and lineage, with when each was stored.
    pub documents: Vec<DocumentRecord>,
    /// The creation or rotation that put this deployment behind the alias.
    pub rotation: Option<Segment>,
    /// A receipt for the entry, when the ledger's signing key is at hand.
    pub receipt: Option<String>,
    /// An inclusion proof against the latest signed tree head.
    pub inclusion_proof: Option<InclusionAnswer>,
}

/// A deployment's identity-probe observations on either side of an inference.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProbesAround {
    /// The last probe observation before the inference.
    pub before: Option<ObservationView>,
    /// The first probe observation after it.
    pub after: Option<ObservationView>,
}

/// An inclusion proof of one entry, or why there is none yet.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum InclusionAnswer {
    /// The proof, with the signed tree head it is against.
    Proof {
        /// The entry's `seq`.
        index: u64,
        /// The tree head's size.
        tree_size: u64,
        /// The entry's leaf hash, base64.
        leaf_hash: String,
        /// The audit path, base64, deepest first.
        proof: Vec<String>,
        /// The signed tree head (a C2SP signed note).
        tree_head: String,
    },
    /// No signed tree head covers the entry yet.
    Pending {
        /// Why.
        pending: String,
    },
}

/// Every inference sent with one decision reference, oldest first.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionAnswer {
    /// The decision reference.
    pub decision: String,
    /// Its inferences.
    pub inferences: Vec<InferenceAnswer>,
}

/// The answer for inference `inference_id`. With `signer`, the answer carries a receipt.
pub fn inference(
    backend: &mut dyn Backend,
    inference_id: &str,
    signer: Option<&NoteSigner>,
) -> Result<InferenceAnswer, AuditError> {
    let view = ascribe_inference::queries::inference(backend, inference_id)?.ok_or_else(|| {
        AuditError::NotFound(format!(
            "no inference `{inference_id}` in this ledger; inference ids start with `inf_` \
             and come from the `Ascribe-Inference-Id` header of an answer"
        ))
    })?;
    answer(backend, view, signer)
}

/// The answers for every inference that carries decision reference `decision`.
pub fn decision(
    backend: &mut dyn Backend,
    decision: &str,
    signer: Option<&NoteSigner>,
) -> Result<DecisionAnswer, AuditError> {
    let views = ascribe_inference::queries::by_decision(backend, decision)?;
    if views.is_empty() {
        return Err(AuditError::NotFound(format!(
            "no inference carries decision reference `{decision}`; callers send it in the \
             `Ascribe-Decision` header"
        )));
    }
    let inferences = views
        .into_iter()
        .map(|view| answer(backend, view, signer))
        .collect::<Result<_, _>>()?;
    Ok(DecisionAnswer {
        decision: decision.to_owned(),
        inferences,
    })
}

fn answer(
    backend: &mut dyn Backend,
    view: InferenceView,
    signer: Option<&NoteSigner>,
) -> Result<InferenceAnswer, AuditError> {
    let record = view.record;
    let final_served = view.completion.as_ref().map(|c| c.record.served.clone());
    let served_field = |name: &str| {
        let recorded = record.served.get(name).filter(|value| !value.is_null());
        recorded
            .or_else(|| final_served.as_ref().and_then(|served| served.get(name)))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let served_model = served_field("model");
    let system_fingerprint = served_field("system_fingerprint");

    let checkpoint_record = queries::checkpoint(backend, &record.checkpoint)?;
    let documents = match &checkpoint_record {
        Some(checkpoint) => documents_of(backend, checkpoint)?,
        None => Vec::new(),
    };
    let deployment_record = queries::deployment(backend, &record.deployment)?;
    let rotation = match &record.alias {
        Some(alias) => queries::segment_before(backend, alias, &record.deployment, view.seq)?,
        None => None,
    };

    let receipt = signer.map(|signer| {
        let receipt = Receipt::new(
            signer.name(),
            &record.inference_id,
            view.seq,
            &view.leaf_hash,
            &record.checkpoint,
        );
        receipt.sign(signer)
    });

    Ok(InferenceAnswer {
        deployment_observations: probes_around(backend, &record.deployment, view.seq)?,
        inclusion_proof: inclusion_proof(backend, view.seq)?,
        receipt: receipt
            .transpose()
            .map_err(|error| AuditError::Invalid(format!("cannot sign a receipt: {error}")))?,
        seq: view.seq,
        time: view.time,
        record,
        served_model,
        system_fingerprint,
        completion: view.completion,
        observations: view.observations,
        deployment_record,
        checkpoint_record,
        documents,
        rotation,
    })
}

/// The card, evaluation profile and lineage of `checkpoint`, in that order, as stored.
pub(crate) fn documents_of(
    backend: &mut dyn Backend,
    checkpoint: &CheckpointRecord,
) -> Result<Vec<DocumentRecord>, AuditError> {
    let mut documents = Vec::new();
    for reference in [
        &checkpoint.card,
        &checkpoint.evaluation,
        &checkpoint.lineage,
    ]
    .into_iter()
    .flatten()
    {
        if let Some(document) = queries::document(backend, &reference.digest)? {
            documents.push(document);
        }
    }
    Ok(documents)
}

/// The deployment's identity-probe observations just before and just after entry `seq`:
/// two lookups on the `observations` index.
fn probes_around(
    backend: &mut dyn Backend,
    deployment: &str,
    seq: u64,
) -> Result<ProbesAround, AuditError> {
    let before_sql = "SELECT seq FROM observations WHERE deployment = $1 AND seq < $2 \
                      AND inference_id IS NULL ORDER BY seq DESC LIMIT 1";
    let after_sql = "SELECT seq FROM observations WHERE deployment = $1 AND seq > $2 \
                     AND inference_id IS NULL ORDER BY seq LIMIT 1";
    let probes = read(backend, |tx| {
        let mut around = [None, None];
        for (slot, sql) in around.iter_mut().zip([before_sql, after_sql]) {
            if let Some(row) = tx.query_row(sql, &[deployment.into(), seq.into()])? {
                let (entry, _) = ascribe_inference::queries::entry_at(tx, row[0].count("seq")?)?;
                *slot = Some(ObservationView {
                    seq: entry.seq,
                    time: entry.time.to_string(),
                    body: entry.body,
                });
            }
        }
        Ok(around)
    })?;
    let [before, after] = probes;
    Ok(ProbesAround { before, after })
}

/// An inclusion proof of entry `seq` against the latest signed tree head, if one covers it.
pub(crate) fn inclusion_proof(
    backend: &mut dyn Backend,
    seq: u64,
) -> Result<Option<InclusionAnswer>, AuditError> {
    let Some(head) = query::latest_tree_head(backend)? else {
        return Ok(None);
    };
    if head.head.size <= seq {
        return Ok(Some(InclusionAnswer::Pending {
            pending: format!(
                "no signed tree head covers entry {seq} yet (latest covers {}); ask again in a \
                 second",
                head.head.size
            ),
        }));
    }
    let proof = query::inclusion_proof(backend, seq, head.head.size)?;
    Ok(Some(InclusionAnswer::Proof {
        index: seq,
        tree_size: head.head.size,
        leaf_hash: BASE64.encode(proof.leaf_hash),
        proof: proof.proof.iter().map(|hash| BASE64.encode(hash)).collect(),
        tree_head: head.head.note,
    }))
}
