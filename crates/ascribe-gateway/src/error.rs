//! The one rescue point: every failure becomes a status and `{"error": {"type", "message"}}`.
//!
//! Client mistakes are logged at debug under the `ascribe::rejection` target; failures of the
//! ledger are logged once, at error, where they are turned into a response. Responses carry
//! only messages written for the client: never an error chain, a database message or a token.

use std::fmt;

use ascribe_store::{AppendError, StoreError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No bearer token, or one that names no active key (401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The key is valid but its role may not use this route (403).
    #[error("{0}")]
    Forbidden(String),
    /// The route, or a record the request names, does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the registry as it is (409).
    #[error("{0}")]
    Conflict(String),
    /// The body was read but a value in it breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// The body is not JSON of the expected shape (400).
    #[error("{0}")]
    Malformed(String),
    /// The body is not declared as JSON (415).
    #[error("send the body as JSON, with `content-type: application/json`")]
    UnsupportedMediaType,
    /// The body is larger than the gateway accepts (413).
    #[error("request body is larger than this gateway accepts (its limits.max_request_bytes)")]
    PayloadTooLarge,
    /// The route exists but not for this method (405).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The ledger could not be written or read; nothing was recorded (503).
    #[error("{0}")]
    Unavailable(&'static str),
    /// A bug; the details are in the log (500).
    #[error("internal error; the gateway's log has the details")]
    Internal,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `type` member of the error body: a stable word clients may match on.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Invalid(_) => "invalid_request",
            ApiError::Malformed(_) => "malformed_request",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    /// A bug: logs `error` with what was being done and answers 500.
    pub(crate) fn internal(doing: &str, error: &dyn fmt::Display) -> ApiError {
        tracing::error!(%error, "{doing}");
        ApiError::Internal
    }
}

/// The message when an entry could not be made durable.
const NOT_WRITTEN: &str =
    "the ledger cannot be written right now; nothing was recorded, retry later";
/// The message when the database could not be read.
const NOT_READ: &str = "the ledger database cannot be read right now; retry later";

impl From<AppendError> for ApiError {
    fn from(error: AppendError) -> ApiError {
        match error {
            // The entry's check refused it: a client mistake, described by the registry.
            AppendError::Refused(reason) => refusal(&reason),
            // The batch was rolled back: durability lost for this request, so error level.
            AppendError::Store(detail) => {
                tracing::error!(error = %detail, "ledger write failed; change not recorded");
                ApiError::Unavailable(NOT_WRITTEN)
            }
            // The writer thread is gone (shutting down, or it died).
            AppendError::Stopped => {
                tracing::error!("ledger writer has stopped; change not recorded");
                ApiError::Unavailable(NOT_WRITTEN)
            }
            // A kind of failure added to the store later: unexpected, so warn.
            other => {
                tracing::warn!(error = %other, "unexpected ledger append failure");
                ApiError::Unavailable(NOT_WRITTEN)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        // Every read failure is the database's (unreachable, or a table it cannot read):
        // the request can be retried, and the message stays in the log.
        tracing::error!(%error, "ledger database read failed");
        ApiError::Unavailable(NOT_READ)
    }
}

/// Turns the registry's refusal text into a status.
///
/// LIMITATION: the registry refuses with text only (`Rejection::Refused(String)`), so the
/// status is read from the wording: "does not exist" and "is not registered" are 404, rules a
/// value breaks are 422, the rest (duplicates, an alias already there) 409. A typed reason in
/// `ascribe_registry` would replace this table; its unit test pins every wording used today.
pub(crate) fn refusal(reason: &str) -> ApiError {
    const NOT_FOUND: [&str; 3] = ["does not exist", "is not registered", "is not stored"];
    const CONFLICT: [&str; 2] = ["already", "no earlier deployment"];
    const INVALID: [&str; 9] = [
        "must ",
        "needs ",
        "of the form",
        "is not in",
        "hash to",
        "requires evidence",
        "is a moving name",
        "the limit is",
        "either hosted",
    ];
    // Names are quoted in backticks and may hold any words; only the wording around counts.
    let wording = unquoted(reason);
    let found = |words: &[&str]| words.iter().any(|word| wording.contains(word));
    let message = api_wording(reason);
    if found(&NOT_FOUND) {
        ApiError::NotFound(message)
    } else if found(&CONFLICT) {
        ApiError::Conflict(message)
    } else if found(&INVALID) {
        ApiError::Invalid(message)
    } else {
        ApiError::Conflict(message)
    }
}

/// `reason` without its backtick-quoted parts.
fn unquoted(reason: &str) -> String {
    reason.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// The registry words its hints for the command line; over HTTP they name body fields.
fn api_wording(reason: &str) -> String {
    const CLI_TO_API: [(&str, &str); 2] = [
        ("pass --allow-moving-name", "set `allow_moving_name`"),
        ("pass --evidence FILE|URI", "send `evidence`"),
    ];
    CLI_TO_API
        .iter()
        .fold(reason.to_owned(), |text, (cli, api)| text.replace(cli, api))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    r#type: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_client_error() {
            tracing::debug!(
                target: "ascribe::rejection",
                status = status.as_u16(),
                r#type = self.kind(),
                reason = %self,
                "request rejected"
            );
        }
        let body = ErrorBody {
            error: ErrorDetail {
                r#type: self.kind(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The answer to a path no route matches.
pub(crate) async fn route_not_found() -> ApiError {
    ApiError::NotFound("no such route; see docs/gateway.md and docs/admin-api.md".to_owned())
}

/// The answer to a known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal wording of `ascribe_registry::changes` and `ascribe_access`, with the
    /// status it must get.
    #[test]
    fn refusals_get_their_status() {
        let cases = [
            ("alias `v1` does not exist", 404),
            ("deployment `d` does not exist", 404),
            ("checkpoint openai:x is not registered", 404),
            ("document sha256:ab (card.md) is not stored", 404),
            ("checkpoint openai:x is already registered", 409),
            (
                "deployment `d` already exists; deployments never change, register a new one",
                409,
            ),
            ("alias `v1` already exists; rotate it instead", 409),
            ("alias `v1` already points at `d`", 409),
            ("alias `v1` has no earlier deployment to roll back to", 409),
            ("document sha256:ab is already stored", 409),
            (
                "a key named `k` already exists; key names are never reused",
                409,
            ),
            ("a rotation needs a reason", 422),
            (
                "alias `v1` requires evidence for every rotation; pass --evidence FILE|URI",
                422,
            ),
            (
                "upstream model `gpt-4o` is a moving name, not the pinned snapshot `x`",
                422,
            ),
            (
                "base URL `ftp://x` must start with http:// or https://",
                422,
            ),
            (
                "alias name `a b` must be 1 to 128 printable characters without spaces",
                422,
            ),
            (
                "weight manifest has no `checkpoint` of the form sha256:<hex>",
                422,
            ),
            (
                "weight manifest is not in `ascribe hash --json` form: missing field",
                422,
            ),
            (
                "weight manifest says sha256:ab but its files hash to sha256:cd",
                422,
            ),
            (
                "a checkpoint is either hosted (provider and snapshot) or weights",
                422,
            ),
            ("document `x` is 20 bytes; the limit is 16", 422),
            (
                "evaluation profile `e.json` needs a `metrics` object and a `data_digest` string",
                422,
            ),
            ("`e.json` must be a JSON object", 422),
            (
                "alias name `already does not exist` must be 1 to 128 printable characters",
                422,
            ),
            ("something new", 409),
        ];
        for (reason, status) in cases {
            assert_eq!(refusal(reason).status().as_u16(), status, "{reason}");
        }
    }

    #[test]
    fn command_line_hints_name_body_fields() {
        let message = refusal("alias `v1` requires evidence; pass --evidence FILE|URI").to_string();
        assert_eq!(message, "alias `v1` requires evidence; send `evidence`");
        let message = refusal("a moving name; use the snapshot, or pass --allow-moving-name to x");
        assert!(message.to_string().contains("set `allow_moving_name`"));
    }
}
