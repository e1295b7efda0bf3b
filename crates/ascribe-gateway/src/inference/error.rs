//! Errors answered in the caller's own dialect: OpenAI's or Anthropic's error shape.

use ascribe_dialects::{error_body, Api, ErrorKind};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::metrics::Refusal;

/// An inference request that is answered with an error.
#[derive(Debug)]
pub(crate) struct InferenceError {
    api: Api,
    kind: ErrorKind,
    message: String,
    /// Set when the call was recorded: the caller can still look it up.
    inference_id: Option<String>,
    /// Set when the ledger could not record (or route) the call.
    refusal: Option<Refusal>,
}

impl InferenceError {
    /// An error of `kind` with a message written for the caller.
    pub(crate) fn new(api: Api, kind: ErrorKind, message: impl Into<String>) -> InferenceError {
        InferenceError {
            api,
            kind,
            message: message.into(),
            inference_id: None,
            refusal: None,
        }
    }

    /// Why the ledger refused the call, if that is why it failed.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        self.refusal
    }

    /// The same error, naming the inference that recorded it.
    pub(crate) fn recorded(mut self, inference_id: &str) -> InferenceError {
        self.inference_id = Some(inference_id.to_owned());
        self
    }

    /// The ledger could not record the call, so nothing of the answer is released.
    pub(crate) fn unrecorded(api: Api) -> InferenceError {
        let mut error = InferenceError::new(
            api,
            ErrorKind::Unavailable,
            "the gateway cannot record this call in its ledger right now, so it gives no \
             answer; retry later",
        );
        error.refusal = Some(Refusal::LedgerWrite);
        error
    }

    /// The ledger's keys or registry could not be read, so the call could not be routed and
    /// nothing was sent upstream.
    pub(crate) fn unreadable(api: Api) -> InferenceError {
        let mut error = InferenceError::new(
            api,
            ErrorKind::Unavailable,
            "the gateway cannot read its ledger right now, so it cannot route this call; \
             retry later",
        );
        error.refusal = Some(Refusal::LedgerRead);
        error
    }
}

impl IntoResponse for InferenceError {
    fn into_response(self) -> Response {
        tracing::debug!(
            target: "ascribe::rejection",
            kind = ?self.kind,
            message = %self.message,
            "inference refused"
        );
        let (status, body) = error_body(self.api, self.kind, &self.message);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(id) = self
            .inference_id
            .and_then(|id| HeaderValue::from_str(&id).ok())
        {
            headers.insert("ascribe-inference-id", id);
        }
        response
    }
}
