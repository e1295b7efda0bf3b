//! The crate's one error type, and which caller-facing [`ErrorKind`] each case becomes.

use crate::{Api, ErrorKind, Upstream};

/// Everything that can go wrong while reading a caller's request or addressing an upstream.
///
/// Messages are lowercase and name the offending value. They are meant for logs and for the
/// caller only where [`Error::caller_kind`] says the caller caused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request body is not JSON.
    #[error("invalid json in request body: {source}")]
    InvalidJson {
        /// What the JSON parser found.
        source: serde_json::Error,
    },
    /// The request body nests arrays and objects deeper than the limit.
    #[error("request body nests deeper than {limit} levels")]
    TooDeep {
        /// The limit, [`crate::MAX_NESTING_DEPTH`].
        limit: usize,
    },
    /// The request body is JSON but not an object.
    #[error("request body must be a json object, found {found}")]
    NotAnObject {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// The request has no `model`.
    #[error("request has no `model`; name an alias")]
    MissingModel,
    /// `model` is there but is not a string.
    #[error("request `model` must be a string, found {found}")]
    ModelNotString {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// `model` is the empty string.
    #[error("request `model` is empty; name an alias")]
    EmptyModel,
    /// `stream` is there but is not a boolean.
    #[error("request `stream` must be a boolean, found {found}")]
    StreamNotBool {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// `stream: true` on an endpoint that never streams.
    #[error("request asks to stream from {api}, which does not stream")]
    StreamNotSupported {
        /// The endpoint.
        api: Api,
    },
    /// `metadata` is there but is not an object.
    #[error("request `metadata` must be an object, found {found}")]
    MetadataNotObject {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// `metadata.ascribe_decision` is there but is not a string.
    #[error("request `metadata.ascribe_decision` must be a string, found {found}")]
    DecisionNotString {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A member the gateway acts on (`stream`, `metadata`, `metadata.ascribe_decision`) is
    /// in the body more than once.
    #[error("request has `{name}` more than once; send it once")]
    DuplicateMember {
        /// The member, as a path from the top.
        name: &'static str,
    },
    /// The caller's endpoint and the deployment's upstream are different dialects.
    #[error(
        "{api} cannot be served through the {upstream} dialect; no translation between dialects"
    )]
    DialectMismatch {
        /// The caller's endpoint.
        api: Api,
        /// The deployment's upstream.
        upstream: Upstream,
    },
    /// The configured upstream name is not one this crate knows.
    #[error(
        "unknown upstream `{name}`; expected openai, azure-openai, anthropic or openai-compatible"
    )]
    UnknownUpstream {
        /// The name as configured.
        name: String,
    },
    /// A hosted upstream was given no API key.
    #[error("{upstream} upstream needs an api key")]
    MissingApiKey {
        /// The deployment's upstream.
        upstream: Upstream,
    },
    /// Azure OpenAI was given no `api-version`.
    #[error("azure-openai upstream needs an api version, e.g. 2024-10-21")]
    MissingApiVersion,
    /// The base URL is not an absolute `http(s)` URL without query or fragment.
    #[error("invalid upstream base url `{base_url}`; expected http(s)://host[/path]")]
    InvalidBaseUrl {
        /// The URL as configured.
        base_url: String,
    },
    /// A value that goes into the URL path or query has characters outside `A-Za-z0-9._-`.
    #[error("invalid {what} `{value}`; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")]
    InvalidUrlPart {
        /// Which value: `deployment` or `api version`.
        what: &'static str,
        /// The value as given.
        value: String,
    },
    /// A value that goes into a header has control characters.
    #[error("invalid value for header `{header}`; control characters are not allowed")]
    InvalidHeaderValue {
        /// The header's name. The value is left out: it may be a secret.
        header: &'static str,
    },
}

impl Error {
    /// The error the caller sees for this failure.
    ///
    /// Request-reading failures and a dialect mismatch are the caller's to fix (400). The rest
    /// are the gateway's own configuration and surface as an upstream failure (502); the
    /// gateway logs the detail and sends the caller a generic message.
    pub fn caller_kind(&self) -> ErrorKind {
        match self {
            Error::InvalidJson { .. }
            | Error::TooDeep { .. }
            | Error::NotAnObject { .. }
            | Error::MissingModel
            | Error::ModelNotString { .. }
            | Error::EmptyModel
            | Error::StreamNotBool { .. }
            | Error::StreamNotSupported { .. }
            | Error::MetadataNotObject { .. }
            | Error::DecisionNotString { .. }
            | Error::DuplicateMember { .. }
            | Error::DialectMismatch { .. } => ErrorKind::InvalidRequest,
            Error::UnknownUpstream { .. }
            | Error::MissingApiKey { .. }
            | Error::MissingApiVersion
            | Error::InvalidBaseUrl { .. }
            | Error::InvalidUrlPart { .. }
            | Error::InvalidHeaderValue { .. } => ErrorKind::UpstreamError,
        }
    }
}
