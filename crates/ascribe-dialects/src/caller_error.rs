//! Errors for callers, in the shape of the API they called.
//!
//! OpenAI's shape is `{"error":{"message","type","param":null,"code"}}` and Anthropic's is
//! `{"type":"error","error":{"type","message"}}`. Both official Python SDKs pick the
//! exception class from the status and read `error.message`, so the status is what a client
//! acts on and the message is what a person reads.
//!
//! | kind | status | OpenAI `type`, `code` | Anthropic `type` |
//! |---|---|---|---|
//! | invalid request | 400 | `invalid_request_error`, `null` | `invalid_request_error` |
//! | unauthenticated | 401 | `invalid_request_error`, `invalid_api_key` | `authentication_error` |
//! | permission denied | 403 | `invalid_request_error`, `permission_denied` | `permission_error` |
//! | not found | 404 | `invalid_request_error`, `model_not_found` | `not_found_error` |
//! | payload too large | 413 | `invalid_request_error`, `request_too_large` | `request_too_large` |
//! | rate limited | 429 | `requests`, `rate_limit_exceeded` | `rate_limit_error` |
//! | upstream error | 502 | `server_error`, `upstream_error` | `api_error` |
//! | identity rejected | 502 | `server_error`, `served_identity_rejected` | `api_error` |
//! | overloaded | OpenAI 503, Anthropic 529 | `server_error`, `overloaded` | `overloaded_error` |
//! | unavailable | 503 | `server_error`, `service_unavailable` | `api_error` |
//! | upstream timeout | 504 | `server_error`, `upstream_timeout` | `timeout_error` |
//!
//! OpenAI's `type` values are the ones its API sends (`invalid_request_error`, the limit
//! kind `requests` on a 429, `server_error`); Anthropic's are its documented error types,
//! `timeout_error` included.

use serde_json::json;

use crate::Api;

/// What went wrong, as far as a caller needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed or names something it may not.
    InvalidRequest,
    /// No valid Ascribe key.
    Unauthenticated,
    /// The key's role may not do this.
    PermissionDenied,
    /// The requested alias or checkpoint is unknown.
    NotFound,
    /// The request body is over the gateway's limit.
    PayloadTooLarge,
    /// The caller, or the gateway's upstream quota, hit a rate limit.
    RateLimited,
    /// The upstream failed: a 5xx, a malformed body, a refused connection.
    UpstreamError,
    /// The upstream answered, but policy rejects the served identity.
    IdentityRejected,
    /// The upstream is overloaded.
    Overloaded,
    /// The ledger cannot be written, so no answer may be released.
    Unavailable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
}

/// The status and body to send a caller of `api` for an error of `kind`.
///
/// `message` is for people and goes out as given, so it must not carry upstream detail or
/// internal error text.
pub fn error_body(api: Api, kind: ErrorKind, message: &str) -> (u16, Vec<u8>) {
    let body = if api.is_anthropic() {
        json!({ "type": "error", "error": { "type": kind.anthropic_type(), "message": message } })
    } else {
        let (error_type, code) = kind.openai_type_and_code();
        json!({ "error": { "message": message, "type": error_type, "param": null, "code": code } })
    };
    (kind.status(api), body.to_string().into_bytes())
}

// === impl ErrorKind ===

impl ErrorKind {
    /// The HTTP status for this kind on `api`; only overload differs between dialects.
    pub fn status(self, api: Api) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::UpstreamError | ErrorKind::IdentityRejected => 502,
            ErrorKind::Overloaded if api.is_anthropic() => 529,
            ErrorKind::Overloaded | ErrorKind::Unavailable => 503,
            ErrorKind::UpstreamTimeout => 504,
        }
    }

    fn openai_type_and_code(self) -> (&'static str, Option<&'static str>) {
        match self {
            ErrorKind::InvalidRequest => ("invalid_request_error", None),
            ErrorKind::Unauthenticated => ("invalid_request_error", Some("invalid_api_key")),
            ErrorKind::PermissionDenied => ("invalid_request_error", Some("permission_denied")),
            ErrorKind::NotFound => ("invalid_request_error", Some("model_not_found")),
            ErrorKind::PayloadTooLarge => ("invalid_request_error", Some("request_too_large")),
            ErrorKind::RateLimited => ("requests", Some("rate_limit_exceeded")),
            ErrorKind::UpstreamError => ("server_error", Some("upstream_error")),
            ErrorKind::IdentityRejected => ("server_error", Some("served_identity_rejected")),
            ErrorKind::Overloaded => ("server_error", Some("overloaded")),
            ErrorKind::Unavailable => ("server_error", Some("service_unavailable")),
            ErrorKind::UpstreamTimeout => ("server_error", Some("upstream_timeout")),
        }
    }

    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Unauthenticated => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::PayloadTooLarge => "request_too_large",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::UpstreamError | ErrorKind::IdentityRejected | ErrorKind::Unavailable => {
                "api_error"
            }
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::UpstreamTimeout => "timeout_error",
        }
    }
}
