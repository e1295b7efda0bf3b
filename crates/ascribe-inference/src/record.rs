//! The bodies of inference, completion and observation entries.

use ascribe_store::{PendingEntry, Rejection};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

/// Entry kind of an inference, written before its answer is released.
pub const INFERENCE_RECORDED: &str = "inference.recorded";
/// Entry kind of the end of a streamed inference.
pub const INFERENCE_COMPLETED: &str = "inference.completed";
/// Entry kind of something the gateway saw that nobody declared.
pub const OBSERVATION_RECORDED: &str = "observation.recorded";

/// A new inference id: `inf_` and a time-ordered UUID (version 7) in hex.
pub fn new_inference_id() -> String {
    format!("inf_{}", uuid::Uuid::now_v7().simple())
}

/// Where the gateway sent the call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCall {
    /// The upstream's dialect (`openai`, `azure-openai`, `anthropic`, `openai-compatible`).
    pub dialect: String,
    /// The upstream's base URL.
    pub base_url: String,
    /// The model name sent upstream.
    pub model: String,
}

/// The body of an `inference.recorded` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferenceRecord {
    /// The id handed to the caller in `Ascribe-Inference-Id`.
    pub inference_id: String,
    /// The endpoint called: `chat.completions`, `responses`, `embeddings` or `messages`.
    pub api: String,
    /// The name of the caller's key.
    pub caller: String,
    /// The caller's decision reference, if it sent one.
    pub decision: Option<String>,
    /// The `model` the caller asked for, verbatim.
    pub requested_model: String,
    /// The alias that name resolved as, or `None` when a checkpoint was asked for directly.
    pub alias: Option<String>,
    /// The deployment called.
    pub deployment: String,
    /// The checkpoint that deployment serves.
    pub checkpoint: String,
    /// Whether the deployment's upstream model is a moving name.
    pub moving_name: bool,
    /// Where the call went.
    pub upstream: UpstreamCall,
    /// The served identity as read from the response: raw fields, normalised fields and
    /// where they came from. Never filled from the request.
    pub served: Value,
    /// `match`, `mismatch`, `undisclosed`, or `none` when no answer came back.
    pub identity_match: String,
    /// For a mismatch: `newer_snapshot` or `different_model`.
    pub mismatch_kind: Option<String>,
    /// Whether the answer is streamed (an `inference.completed` entry follows).
    pub stream: bool,
    /// The HTTP status the caller gets.
    pub status: u16,
    /// `answered`, `stream_open`, `rejected_mismatch`, `upstream_error`, `upstream_timeout`
    /// or `upstream_unreachable`.
    pub outcome: String,
    /// SHA-256 (hex) of the request body the caller sent.
    pub request_sha256: String,
    /// SHA-256 (hex) of the response body as the upstream sent it (non-streamed answers).
    pub response_sha256: Option<String>,
    /// Token usage as the upstream reported it.
    pub usage: Option<Value>,
    /// What went wrong, for failed calls; never a secret or a body.
    pub error: Option<String>,
    /// Milliseconds until the upstream's first byte, and until its last.
    pub upstream_ms: Option<Timings>,
    /// Digests under which request and response bodies were kept (retention `full`).
    pub retained: Option<Retained>,
}

/// Upstream timings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Until the response headers arrived.
    pub first_byte: f64,
    /// Until the body was complete (non-streamed answers).
    pub total: Option<f64>,
}

/// Where retained bodies are, by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retained {
    /// `sha256:<hex>` of the stored request body.
    pub request: String,
    /// `sha256:<hex>` of the stored response body, once complete.
    pub response: Option<String>,
}

impl InferenceRecord {
    /// The entry recording this inference, with the gateway as actor.
    pub fn into_entry(self) -> Result<PendingEntry, serde_json::Error> {
        Ok(PendingEntry::new(
            INFERENCE_RECORDED,
            "gateway",
            serde_json::to_value(self)?,
        ))
    }

    /// The entry recording this inference, storing `payloads` (request and response bodies)
    /// content-addressed in the same transaction, for deployments whose retention is `full`.
    pub fn into_entry_with_payloads(
        self,
        payloads: Vec<Vec<u8>>,
    ) -> Result<PendingEntry, serde_json::Error> {
        let body = serde_json::to_value(self)?;
        Ok(with_payloads(INFERENCE_RECORDED, body, payloads))
    }
}

/// `sha256:<hex>` of a payload: the key it is stored under.
pub fn payload_digest(payload: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(payload)))
}

/// A gateway entry whose check first stores `payloads` content-addressed.
fn with_payloads(kind: &'static str, body: Value, payloads: Vec<Vec<u8>>) -> PendingEntry {
    use base64::Engine as _;
    PendingEntry::checked(kind, "gateway", move |tx| {
        for payload in &payloads {
            let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
            tx.execute(
                "INSERT INTO inference_payloads (digest, content_base64) VALUES ($1, $2) \
                 ON CONFLICT (digest) DO NOTHING",
                &[payload_digest(payload).into(), encoded.into()],
            )?;
        }
        Ok(body.clone())
    })
}

/// The body of an `inference.completed` entry: how a streamed answer ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompletionRecord {
    /// The inference this completes.
    pub inference_id: String,
    /// Whether the stream reached its terminal event.
    pub completed: bool,
    /// Whether the stream was cut (by the upstream or the caller) before its terminal event.
    pub truncated: bool,
    /// SHA-256 (hex) of every byte the upstream streamed.
    pub response_sha256: String,
    /// Number of bytes streamed.
    pub n_bytes: u64,
    /// The served identity as finally known (some servers send their fingerprint last).
    pub served: Value,
    /// Token usage from the final events.
    pub usage: Option<Value>,
    /// The finish reason from the final events.
    pub finish_reason: Option<String>,
    /// An error event inside the stream, or why it was cut.
    pub error: Option<String>,
    /// `sha256:<hex>` under which the streamed body was kept (retention `full`).
    pub retained_response: Option<String>,
}

impl CompletionRecord {
    /// The entry recording the end of the stream.
    pub fn into_entry(self) -> Result<PendingEntry, serde_json::Error> {
        Ok(PendingEntry::new(
            INFERENCE_COMPLETED,
            "gateway",
            serde_json::to_value(self)?,
        ))
    }

    /// The entry recording the end of the stream and storing its body content-addressed.
    pub fn into_entry_with_payload(self, body: Vec<u8>) -> Result<PendingEntry, serde_json::Error> {
        let record = serde_json::to_value(self)?;
        Ok(with_payloads(INFERENCE_COMPLETED, record, vec![body]))
    }
}

/// The body of an `observation.recorded` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// `served_model_mismatch` or `new_system_fingerprint`.
    pub kind: String,
    /// The inference that revealed it.
    pub inference_id: String,
    /// The deployment called.
    pub deployment: String,
    /// Its checkpoint.
    pub checkpoint: String,
    /// What the deployment expected to be served.
    pub expected: String,
    /// The served model.
    pub served_model: Option<String>,
    /// The served fingerprint.
    pub system_fingerprint: Option<String>,
    /// For a mismatch: `newer_snapshot` or `different_model`.
    pub mismatch_kind: Option<String>,
}

impl Observation {
    /// The entry recording a served model that differs from the expected one.
    pub fn into_entry(self) -> Result<PendingEntry, serde_json::Error> {
        Ok(PendingEntry::new(
            OBSERVATION_RECORDED,
            "gateway",
            serde_json::to_value(self)?,
        ))
    }

    /// The entry recording a fingerprint first seen for this checkpoint; it is refused (and
    /// nothing written) when the fingerprint is already known, checked under the write lock.
    pub fn into_new_fingerprint_entry(self) -> Result<PendingEntry, serde_json::Error> {
        let body = serde_json::to_value(&self)?;
        let (checkpoint, fingerprint) = (
            self.checkpoint.clone(),
            self.system_fingerprint.clone().unwrap_or_default(),
        );
        Ok(PendingEntry::checked(
            OBSERVATION_RECORDED,
            "gateway",
            move |tx| {
                let sql = "SELECT first_seq FROM checkpoint_fingerprints \
                       WHERE checkpoint = $1 AND fingerprint = $2";
                let known = tx.query_row(
                    sql,
                    &[checkpoint.as_str().into(), fingerprint.as_str().into()],
                )?;
                match known {
                    Some(_) => Err(Rejection::Refused("fingerprint already known".into())),
                    None => Ok(body.clone()),
                }
            },
        ))
    }
}

/// What an identity probe of a deployment saw: the upstream's model listing and its answer
/// to a fixed canary prompt at temperature 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The deployment probed.
    pub deployment: String,
    /// The checkpoint the registry says it serves.
    pub checkpoint: String,
    /// The model ids its `/models` listing named, sorted.
    pub models: Vec<String>,
    /// SHA-256 (hex) of those ids joined with newlines.
    pub models_sha256: String,
    /// SHA-256 (hex) of the canary answer's text.
    pub canary_sha256: String,
}

impl ProbeResult {
    /// The observation entry for this probe, decided under the write lock: kind
    /// `identity_probe_baseline` for a deployment's first probe, `identity_probe_changed`
    /// (with the previous digests) when the listing or the canary answer changed; refused,
    /// and nothing written, when both are as last recorded.
    pub fn into_entry(self) -> Result<PendingEntry, serde_json::Error> {
        let probe = serde_json::to_value(&self)?;
        Ok(PendingEntry::checked(
            OBSERVATION_RECORDED,
            "gateway",
            move |tx| {
                let sql = "SELECT models_sha256, canary_sha256, seq FROM deployment_probes \
                       WHERE deployment = $1";
                let deployment = probe["deployment"].as_str().unwrap_or("");
                let previous = tx.query_row(sql, &[deployment.into()])?;
                let mut body = probe.clone();
                match previous {
                    None => body["kind"] = "identity_probe_baseline".into(),
                    Some(row) => {
                        let (models, canary) =
                            (row[0].text("models_sha256")?, row[1].text("canary_sha256")?);
                        if models == probe["models_sha256"] && canary == probe["canary_sha256"] {
                            return Err(Rejection::Refused("probe answers unchanged".into()));
                        }
                        body["kind"] = "identity_probe_changed".into();
                        body["previous"] = serde_json::json!({
                            "models_sha256": models,
                            "canary_sha256": canary,
                            "seq": row[2].count("seq")?,
                        });
                    }
                }
                Ok(body)
            },
        ))
    }
}
