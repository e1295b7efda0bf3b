//! Who is calling: a caller key sent as OpenAI SDKs send it (`Authorization: Bearer`) or as
//! Anthropic SDKs do (`x-api-key`), and the decision reference it attaches.

use ascribe_access::{KeyRecord, Role};
use ascribe_dialects::{Api, ErrorKind};
use axum::http::HeaderMap;

use super::error::InferenceError;
use crate::state::AppState;

/// Longest decision reference accepted, in bytes.
pub(crate) const MAX_DECISION_LEN: usize = 200;

/// The active caller key the request carries, read on its own (the inference path reads it
/// together with the route, in [`super::admit`]).
pub(crate) async fn authenticate(
    state: &AppState,
    api: Api,
    headers: &HeaderMap,
) -> Result<KeyRecord, InferenceError> {
    let token = presented_token(api, headers)?;
    let key = state
        .read(move |backend| ascribe_access::authenticate(backend, &token))
        .await
        .map_err(|_| InferenceError::unreadable(api))?;
    check_key(api, key)
}

/// The caller key the request carries, as sent; a request without one is refused before
/// anything is read.
pub(crate) fn presented_token(api: Api, headers: &HeaderMap) -> Result<String, InferenceError> {
    match token(headers) {
        Some(token) => Ok(token.to_owned()),
        None => Err(InferenceError::new(
            api,
            ErrorKind::Unauthenticated,
            "missing key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
        )),
    }
}

/// The key found for the presented token, if it is an active caller key.
pub(crate) fn check_key(api: Api, key: Option<KeyRecord>) -> Result<KeyRecord, InferenceError> {
    let Some(key) = key else {
        return Err(InferenceError::new(
            api,
            ErrorKind::Unauthenticated,
            "unknown or revoked key",
        ));
    };
    if key.role != Role::Caller {
        return Err(InferenceError::new(
            api,
            ErrorKind::PermissionDenied,
            format!(
                "key `{}` has role {}; inference needs a caller key",
                key.name, key.role
            ),
        ));
    }
    tracing::Span::current().record("actor", tracing::field::display(&key.name));
    Ok(key)
}

fn token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let api_key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    bearer.or(api_key).filter(|token| !token.is_empty())
}

/// The decision reference: the `Ascribe-Decision` header, else the body's
/// `metadata.ascribe_decision`. Printable ASCII only, so it cannot smuggle a header or a
/// log line.
pub(crate) fn decision_reference(
    api: Api,
    headers: &HeaderMap,
    from_body: Option<&str>,
) -> Result<Option<String>, InferenceError> {
    let from_header = match headers.get("ascribe-decision") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| invalid_decision(api))?),
    };
    let Some(reference) = from_header.or(from_body) else {
        return Ok(None);
    };
    let printable = reference.bytes().all(|byte| (0x20..0x7f).contains(&byte));
    if reference.is_empty() || reference.len() > MAX_DECISION_LEN || !printable {
        return Err(invalid_decision(api));
    }
    Ok(Some(reference.to_owned()))
}

fn invalid_decision(api: Api) -> InferenceError {
    InferenceError::new(
        api,
        ErrorKind::InvalidRequest,
        format!(
            "the decision reference must be 1 to {MAX_DECISION_LEN} printable ASCII characters"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_come_from_either_sdk_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(token(&headers), None);
        headers.insert("x-api-key", HeaderValue::from_static("asc_anthropic"));
        assert_eq!(token(&headers), Some("asc_anthropic"));
        headers.insert(
            "authorization",
            HeaderValue::from_static("Bearer asc_openai"),
        );
        assert_eq!(token(&headers), Some("asc_openai"));
    }

    #[test]
    fn decision_references_are_printable_and_bounded() {
        let api = Api::ChatCompletions;
        let mut headers = HeaderMap::new();
        assert_eq!(decision_reference(api, &headers, None).ok(), Some(None));
        let from_body = decision_reference(api, &headers, Some("case-7")).ok();
        assert_eq!(from_body, Some(Some("case-7".to_owned())));
        headers.insert(
            "ascribe-decision",
            HeaderValue::from_static("case-2026-0412"),
        );
        let header_wins = decision_reference(api, &headers, Some("case-7")).ok();
        assert_eq!(header_wins, Some(Some("case-2026-0412".to_owned())));
        assert!(decision_reference(api, &HeaderMap::new(), Some("a\r\nX-Evil: 1")).is_err());
        assert!(decision_reference(api, &HeaderMap::new(), Some(&"x".repeat(201))).is_err());
    }
}
