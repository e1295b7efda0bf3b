//! Turning a call into ledger entries, and the receipt handed back once they are durable.

use std::time::Instant;

use ascribe_dialects::{Api, IdentityMatch, MismatchKind, ServedIdentity};
use ascribe_inference::{
    payload_digest, InferenceRecord, Observation, Receipt, Retained, Timings, UpstreamCall,
};
use ascribe_ledger::Hash;
use ascribe_store::{AppendError, AppendedEntry};
use axum::http::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::error::InferenceError;
use super::route::Route;
use crate::state::AppState;
use crate::telemetry::{InferenceSpan, RecordedAttributes};

/// The observation of a served fingerprint the ledger has not seen for the checkpoint.
const NEW_FINGERPRINT: &str = "new_system_fingerprint";

/// One call through the gateway, from authentication to its record.
pub(crate) struct Call {
    /// The id handed back in `Ascribe-Inference-Id`.
    pub(crate) inference_id: String,
    /// The endpoint called.
    pub(crate) api: Api,
    /// The caller's key name.
    pub(crate) caller: String,
    /// The caller's decision reference.
    pub(crate) decision: Option<String>,
    /// The `model` the caller asked for.
    pub(crate) requested_model: String,
    /// Where it went.
    pub(crate) route: Route,
    /// SHA-256 (hex) of the caller's request body.
    pub(crate) request_sha256: String,
    /// Whether the caller asked for a stream.
    pub(crate) stream: bool,
    /// When the upstream request was sent.
    pub(crate) started: Instant,
    /// The caller's request body, kept when the deployment's retention is `full`.
    pub(crate) retained_request: Option<Vec<u8>>,
    /// The call's OpenTelemetry span; it ends when the call is dropped.
    pub(crate) span: InferenceSpan,
}

/// How the served identity compares with the deployment's expectation, as recorded.
pub(crate) struct Verdict {
    /// `match`, `mismatch`, `undisclosed`, or `none` when nothing was served.
    pub(crate) identity_match: &'static str,
    /// `newer_snapshot` or `different_model` for a mismatch.
    pub(crate) mismatch_kind: Option<&'static str>,
}

impl Verdict {
    /// The verdict of [`ascribe_dialects::classify`].
    pub(crate) fn of(matched: IdentityMatch) -> Verdict {
        match matched {
            IdentityMatch::Match => Verdict {
                identity_match: "match",
                mismatch_kind: None,
            },
            IdentityMatch::Undisclosed => Verdict {
                identity_match: "undisclosed",
                mismatch_kind: None,
            },
            IdentityMatch::Mismatch(kind) => Verdict {
                identity_match: "mismatch",
                mismatch_kind: Some(match kind {
                    MismatchKind::NewerSnapshot => "newer_snapshot",
                    MismatchKind::DifferentModel => "different_model",
                }),
            },
        }
    }

    /// No answer came back, so nothing was served.
    pub(crate) fn nothing_served() -> Verdict {
        Verdict {
            identity_match: "none",
            mismatch_kind: None,
        }
    }

    /// Whether the served model differs from the expected one.
    pub(crate) fn is_mismatch(&self) -> bool {
        self.mismatch_kind.is_some()
    }
}

/// What the record says happened, beyond identity.
pub(crate) struct Outcome {
    /// The status the caller gets.
    pub(crate) status: u16,
    /// The outcome word.
    pub(crate) outcome: &'static str,
    /// SHA-256 (hex) of the upstream's body, for whole answers.
    pub(crate) response_sha256: Option<String>,
    /// Usage as reported.
    pub(crate) usage: Option<Value>,
    /// What went wrong.
    pub(crate) error: Option<String>,
    /// Milliseconds to the upstream's headers and to its last byte.
    pub(crate) upstream_ms: Option<Timings>,
    /// The upstream's whole body, kept with the record when retention is `full`.
    pub(crate) response_body: Option<Vec<u8>>,
}

/// An inference record and the bodies to keep with it.
pub(crate) struct Recording {
    record: InferenceRecord,
    payloads: Vec<Vec<u8>>,
}

/// A durable inference entry and the receipt over it.
pub(crate) struct Recorded {
    /// The receipt token.
    pub(crate) receipt: String,
}

impl Call {
    /// The `inference.recorded` body for this call.
    pub(crate) fn record(
        &self,
        served: &ServedIdentity,
        verdict: &Verdict,
        outcome: Outcome,
    ) -> Recording {
        let deployment = &self.route.deployment;
        let response_body = outcome.response_body;
        let record = InferenceRecord {
            inference_id: self.inference_id.clone(),
            api: api_name(self.api).to_owned(),
            caller: self.caller.clone(),
            decision: self.decision.clone(),
            requested_model: self.requested_model.clone(),
            alias: self.route.alias.as_ref().map(|alias| alias.name.clone()),
            deployment: deployment.name.clone(),
            checkpoint: deployment.checkpoint.clone(),
            moving_name: deployment.moving_name,
            upstream: UpstreamCall {
                dialect: deployment.dialect.to_string(),
                base_url: deployment.base_url.clone(),
                model: deployment.upstream_model.clone(),
            },
            served: serde_json::to_value(served).unwrap_or(Value::Null),
            identity_match: verdict.identity_match.to_owned(),
            mismatch_kind: verdict.mismatch_kind.map(str::to_owned),
            stream: self.stream,
            status: outcome.status,
            outcome: outcome.outcome.to_owned(),
            request_sha256: self.request_sha256.clone(),
            response_sha256: outcome.response_sha256,
            usage: outcome.usage,
            error: outcome.error,
            upstream_ms: outcome.upstream_ms,
            retained: self.retained_request.as_deref().map(|request| Retained {
                request: payload_digest(request),
                response: response_body.as_deref().map(payload_digest),
            }),
        };
        let payloads = match &self.retained_request {
            Some(request) => [Some(request.clone()), response_body]
                .into_iter()
                .flatten()
                .collect(),
            None => Vec::new(),
        };
        Recording { record, payloads }
    }

    /// Observations the served identity calls for: a mismatch, and a fingerprint the ledger
    /// may not hold yet for this checkpoint (checked, and dropped if it does, under the write
    /// lock; not asked for at all when this gateway knows the ledger holds it).
    fn observations(
        &self,
        state: &AppState,
        served: &ServedIdentity,
        verdict: &Verdict,
    ) -> Vec<Observation> {
        let deployment = &self.route.deployment;
        let observation = |kind: &str| Observation {
            kind: kind.to_owned(),
            inference_id: self.inference_id.clone(),
            deployment: deployment.name.clone(),
            checkpoint: deployment.checkpoint.clone(),
            expected: deployment.expect_served.clone(),
            served_model: served.model.clone(),
            system_fingerprint: served.system_fingerprint.clone(),
            mismatch_kind: verdict.mismatch_kind.map(str::to_owned),
        };
        let mut observations = Vec::new();
        if verdict.is_mismatch() {
            observations.push(observation("served_model_mismatch"));
        }
        if let Some(fingerprint) = &served.system_fingerprint {
            if !state.fingerprint_known(&deployment.checkpoint, fingerprint) {
                observations.push(observation(NEW_FINGERPRINT));
            }
        }
        observations
    }

    /// Appends the inference entry (and its observations) and waits until it is durable.
    /// When it cannot be written the caller gets a 503 and nothing of the answer.
    pub(crate) async fn write(
        &self,
        state: &AppState,
        recording: Recording,
        served: &ServedIdentity,
        verdict: &Verdict,
    ) -> Result<Recorded, InferenceError> {
        let unrecorded = || {
            self.span
                .failed("ledger_unavailable", "the ledger could not record the call");
            InferenceError::unrecorded(self.api)
        };
        let Recording { record, payloads } = recording;
        let (status, outcome, usage) =
            (record.status, record.outcome.clone(), record.usage.clone());
        let entry = match payloads.is_empty() {
            true => record.into_entry(),
            false => record.into_entry_with_payloads(payloads),
        };
        let mut entries = vec![entry.map_err(|_| unrecorded())?];
        let observations = self.observations(state, served, verdict);
        for observation in &observations {
            let entry = match observation.kind.as_str() {
                NEW_FINGERPRINT => observation.clone().into_new_fingerprint_entry(),
                _ => observation.clone().into_entry(),
            };
            entries.push(entry.map_err(|_| unrecorded())?);
        }
        let mut outcomes = state.append_all(entries).await.into_iter();
        let appended = match outcomes.next() {
            Some(Ok(appended)) => appended,
            Some(Err(error)) => {
                let inference_id = &self.inference_id;
                tracing::error!(%inference_id, %error, "inference not recorded");
                return Err(unrecorded());
            }
            None => return Err(unrecorded()),
        };
        self.count(state, verdict, status, &outcome, &observations, outcomes);
        let seq = appended.entry.seq;
        let alias = self.route.alias.as_ref().map(|alias| alias.name.as_str());
        tracing::info!(
            inference_id = %self.inference_id,
            alias = alias.unwrap_or("-"),
            deployment = %self.route.deployment.name,
            checkpoint = %self.route.deployment.checkpoint,
            caller = %self.caller,
            identity_match = verdict.identity_match,
            status,
            outcome = %outcome,
            seq,
            "inference recorded"
        );
        self.span.recorded(&RecordedAttributes {
            inference_id: &self.inference_id,
            checkpoint: &self.route.deployment.checkpoint,
            deployment: &self.route.deployment.name,
            alias,
            identity_match: verdict.identity_match,
            served,
            usage: usage.as_ref(),
        });
        let receipt = self
            .receipt(state, seq, &appended.leaf_hash)
            .map_err(|_| unrecorded())?;
        Ok(Recorded { receipt })
    }

    /// Counts a durable inference and the observations that were recorded with it (a
    /// fingerprint already known is refused by its check, and not counted).
    fn count(
        &self,
        state: &AppState,
        verdict: &Verdict,
        status: u16,
        outcome: &str,
        observations: &[Observation],
        outcomes: impl Iterator<Item = Result<AppendedEntry, AppendError>>,
    ) {
        let metrics = state.metrics();
        metrics.inference_recorded(verdict.identity_match);
        for (observation, appended) in observations.iter().zip(outcomes) {
            if appended.is_ok() {
                metrics.observation_recorded(&observation.kind);
            }
            let in_ledger = matches!(appended, Ok(_) | Err(AppendError::Refused(_)));
            if let (NEW_FINGERPRINT, true) = (observation.kind.as_str(), in_ledger) {
                let fingerprint = observation
                    .system_fingerprint
                    .as_deref()
                    .unwrap_or_default();
                state.fingerprint_in_ledger(&observation.checkpoint, fingerprint);
            }
        }
        let deployment = &self.route.deployment.name;
        state
            .readiness()
            .upstream_called(deployment, status, outcome);
    }

    /// The receipt over the entry at `seq`.
    pub(crate) fn receipt(
        &self,
        state: &AppState,
        seq: u64,
        leaf_hash: &Hash,
    ) -> Result<String, ascribe_inference::ReceiptError> {
        let signer = state.signer();
        let checkpoint = &self.route.deployment.checkpoint;
        Receipt::new(
            signer.name(),
            &self.inference_id,
            seq,
            leaf_hash,
            checkpoint,
        )
        .sign(signer)
    }

    /// The `Ascribe-*` headers of an answer.
    pub(crate) fn headers(&self, recorded: &Recorded) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let pairs = [
            ("ascribe-inference-id", self.inference_id.as_str()),
            (
                "ascribe-checkpoint",
                self.route.deployment.checkpoint.as_str(),
            ),
            ("ascribe-receipt", recorded.receipt.as_str()),
        ];
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
        headers
    }
}

/// The name an endpoint is recorded under.
pub(crate) fn api_name(api: Api) -> &'static str {
    match api {
        Api::ChatCompletions => "chat.completions",
        Api::Responses => "responses",
        Api::Embeddings => "embeddings",
        Api::Messages => "messages",
    }
}

/// Milliseconds in a duration.
pub(crate) fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
