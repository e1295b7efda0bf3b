//! Inference records: what a caller asked for, what actually served it, and the proof handed
//! back.
//!
//! The gateway writes one `inference.recorded` entry per call, before the answer is
//! released; a streamed answer adds an `inference.completed` entry when the stream ends or is
//! cut. A served model that differs from the deployment's expectation, and a
//! `system_fingerprint` never seen before for a checkpoint, each add an
//! `observation.recorded` entry. The `inferences`, `inference_observations` and
//! `checkpoint_fingerprints` tables are their projection. A [`receipt`] binds an inference id
//! to its ledger position, leaf hash and checkpoint under the ledger's key.
//!
//! This crate never touches the network and never reads the clock; it does not know the
//! provider dialects either: the served identity arrives as JSON from the gateway.

#![deny(missing_docs)]

mod projection;
pub mod queries;
pub mod receipt;
mod record;

pub use projection::{create_tables, InferenceProjection};
pub use receipt::{Receipt, ReceiptError};
pub use record::{
    new_inference_id, payload_digest, CompletionRecord, InferenceRecord, Observation, ProbeResult,
    Retained, Timings, UpstreamCall, INFERENCE_COMPLETED, INFERENCE_RECORDED, OBSERVATION_RECORDED,
};
