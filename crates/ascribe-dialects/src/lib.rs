//! The provider dialects Ascribe's gateway speaks, as pure code.
//!
//! A caller speaks OpenAI's API (chat completions, Responses, embeddings) or Anthropic's
//! Messages API; a deployment reaches OpenAI, Azure OpenAI, Anthropic or an
//! OpenAI-compatible server. This crate knows what those bytes look like on each side of the
//! gateway, following the request path of `SPEC.md`:
//!
//! - [`parse_request`] reads the requested `model` (the alias), `stream` and the decision
//!   reference; [`InferenceRequest::upstream_body`] rewrites `model` to the deployment's
//!   pinned upstream name.
//! - [`upstream_target`] gives the URL and credential headers for the deployment's
//!   [`Upstream`].
//! - [`identity_from_response`] and [`StreamObserver`] read the [`ServedIdentity`]: the
//!   served model, `system_fingerprint`, response id and identity-bearing headers, from a
//!   whole body or from stream events split at arbitrary bytes. [`SseParser`] is the
//!   incremental event-stream parser under the observer.
//! - [`classify`] compares the served identity with the deployment's expectation:
//!   match, mismatch (newer snapshot or different model) or undisclosed.
//! - [`error_body`] shapes an error the way the caller's API does, and
//!   [`rewrite_served_model`] hands the requested name back where policy says so.
//!
//! The design decision to know: what a provider sends is evidence, so it is kept as sent.
//! Identity fields are recorded raw next to their normalised form; the request body and a
//! rewritten response keep every byte the gateway does not own, edited in place rather than
//! re-serialised. "Not disclosed" (`null`, `""`, absent) is one state, and a value that does
//! not disclose never erases one that did.
//!
//! This crate never touches the network, the file system or the clock: callers bring bytes
//! and headers and get values back. Every parser is a plain function or a struct fed
//! `&[u8]`, so a fuzzer can drive it directly. It does not translate between dialects (an
//! OpenAI call cannot reach an Anthropic upstream), does not read Ollama's native NDJSON,
//! Gemini's native API, Bedrock or Cohere, and does not probe self-hosted servers
//! (`/v1/models`, `/info`, `/props`) for the weights behind a label: those are the
//! gateway's, with its clock and sockets.

#![deny(missing_docs)]

mod answer;
mod caller_error;
mod classify;
mod dialect;
mod error;
mod identity;
mod json_scan;
mod request;
mod rewrite;
mod sse;
mod stream;
mod target;

pub use answer::answer_text;
pub use caller_error::{error_body, ErrorKind};
pub use classify::{
    classify, is_moving_name, pattern_matches, strip_snapshot_suffix, IdentityMatch, MismatchKind,
};
pub use dialect::{Api, Upstream};
pub use error::Error;
pub use identity::{
    identity_from_response, IdentitySource, ServedIdentity, IDENTITY_HEADERS, RAW_IDENTITY_FIELDS,
};
pub use request::{parse_request, InferenceRequest, DECISION_METADATA_KEY, MAX_NESTING_DEPTH};
pub use rewrite::{rewrite_served_model, rewrite_served_model_in_event, ServedModelRewriter};
pub use sse::{SseEvent, SseParser};
pub use stream::{StreamObserver, StreamOutcome};
pub use target::{upstream_target, UpstreamTarget, DEFAULT_ANTHROPIC_VERSION};
