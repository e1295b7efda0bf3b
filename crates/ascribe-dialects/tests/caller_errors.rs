//! Error bodies in each dialect's shape, checked against the providers' own error fixtures.

mod common;

use ascribe_dialects::{error_body, Api, ErrorKind};
use common::fixture;
use serde_json::{Map, Value};

const KINDS: [ErrorKind; 11] = [
    ErrorKind::InvalidRequest,
    ErrorKind::Unauthenticated,
    ErrorKind::PermissionDenied,
    ErrorKind::NotFound,
    ErrorKind::PayloadTooLarge,
    ErrorKind::RateLimited,
    ErrorKind::UpstreamError,
    ErrorKind::IdentityRejected,
    ErrorKind::Overloaded,
    ErrorKind::Unavailable,
    ErrorKind::UpstreamTimeout,
];

const ANTHROPIC_TYPES: [&str; 9] = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
];

fn body(api: Api, kind: ErrorKind, message: &str) -> (u16, Value) {
    let (status, bytes) = error_body(api, kind, message);
    (
        status,
        serde_json::from_slice(&bytes).expect("error bodies are json"),
    )
}

fn keys(value: &Value) -> Vec<&str> {
    let object = value.as_object().map(Map::keys).into_iter().flatten();
    object.map(String::as_str).collect()
}

#[test]
fn golden_bodies() {
    let message = "unknown alias `v2`";
    let openai = error_body(Api::ChatCompletions, ErrorKind::NotFound, message);
    let expected = concat!(
        r#"{"error":{"code":"model_not_found","message":"unknown alias `v2`","param":null,"#,
        r#""type":"invalid_request_error"}}"#
    );
    assert_eq!(
        (openai.0, String::from_utf8_lossy(&openai.1)),
        (404, expected.into())
    );

    let anthropic = error_body(
        Api::Messages,
        ErrorKind::Overloaded,
        "upstream is overloaded",
    );
    let expected = concat!(
        r#"{"error":{"message":"upstream is overloaded","type":"overloaded_error"},"#,
        r#""type":"error"}"#
    );
    assert_eq!(
        (anthropic.0, String::from_utf8_lossy(&anthropic.1)),
        (529, expected.into())
    );
}

#[test]
fn statuses() {
    let expected = [400, 401, 403, 404, 413, 429, 502, 502, 503, 503, 504];
    for (kind, status) in KINDS.into_iter().zip(expected) {
        assert_eq!(kind.status(Api::Responses), status, "{kind:?}");
        let anthropic = if kind == ErrorKind::Overloaded {
            529
        } else {
            status
        };
        assert_eq!(kind.status(Api::Messages), anthropic, "{kind:?}");
        assert_eq!(body(Api::Embeddings, kind, "m").0, status, "{kind:?}");
    }
}

#[test]
fn openai_shape_matches_openai_errors() {
    let recorded: Value =
        serde_json::from_slice(&fixture("openai-error-404-model.json")).expect("json");
    for api in [Api::ChatCompletions, Api::Responses, Api::Embeddings] {
        for kind in KINDS {
            let (_, value) = body(api, kind, "say \"why\"\n");
            let mut found = keys(&value["error"]);
            let mut wanted = keys(&recorded["error"]);
            found.sort_unstable();
            wanted.sort_unstable();
            assert_eq!(found, wanted, "{kind:?}");
            assert_eq!(keys(&value), ["error"]);
            assert_eq!(value["error"]["message"], "say \"why\"\n");
            assert_eq!(value["error"]["param"], Value::Null);
            assert!(value["error"]["type"].is_string());
        }
    }
    let (_, not_found) = body(Api::ChatCompletions, ErrorKind::NotFound, "m");
    assert_eq!(not_found["error"]["type"], recorded["error"]["type"]);
    assert_eq!(not_found["error"]["code"], recorded["error"]["code"]);

    let rate: Value = serde_json::from_slice(&fixture("openai-error-429.json")).expect("json");
    let (_, limited) = body(Api::ChatCompletions, ErrorKind::RateLimited, "m");
    assert_eq!(limited["error"]["code"], rate["error"]["code"]);
    let server: Value = serde_json::from_slice(&fixture("openai-error-500.json")).expect("json");
    let (_, upstream) = body(Api::ChatCompletions, ErrorKind::UpstreamError, "m");
    assert_eq!(upstream["error"]["type"], server["error"]["type"]);
}

#[test]
fn anthropic_shape_matches_anthropic_errors() {
    for kind in KINDS {
        let (_, value) = body(Api::Messages, kind, "m");
        assert_eq!(value["type"], "error");
        assert_eq!(keys(&value["error"]), ["message", "type"]);
        let error_type = value["error"]["type"].as_str().unwrap_or_default();
        assert!(
            ANTHROPIC_TYPES.contains(&error_type),
            "{kind:?}: {error_type}"
        );
    }
    let recorded = [
        ("anthropic-error-404-model.json", ErrorKind::NotFound),
        ("anthropic-error-429.json", ErrorKind::RateLimited),
        ("anthropic-error-529.json", ErrorKind::Overloaded),
    ];
    for (file, kind) in recorded {
        let recorded: Value = serde_json::from_slice(&fixture(file)).expect("json");
        let (_, value) = body(Api::Messages, kind, "m");
        assert_eq!(value["type"], recorded["type"], "{file}");
        assert_eq!(value["error"]["type"], recorded["error"]["type"], "{file}");
    }
}
