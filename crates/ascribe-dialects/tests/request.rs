//! Reading callers' requests, writing upstream bodies, and addressing upstreams.

use ascribe_dialects::{
    parse_request, upstream_target, Api, Error, ErrorKind, InferenceRequest, Upstream,
    MAX_NESTING_DEPTH,
};
use serde_json::{json, Value};

fn parse(api: Api, body: &str) -> InferenceRequest {
    parse_request(api, body.as_bytes()).expect("a valid request")
}

fn rejection(api: Api, body: &str) -> String {
    match parse_request(api, body.as_bytes()) {
        Ok(request) => panic!("accepted {request:?}"),
        Err(error) => {
            assert_eq!(error.caller_kind(), ErrorKind::InvalidRequest, "{error}");
            error.to_string()
        }
    }
}

fn upstream_body(request: &InferenceRequest, upstream_model: &str) -> String {
    String::from_utf8(request.upstream_body(upstream_model)).expect("utf-8")
}

#[test]
fn reads_model_stream_and_decision_reference() {
    let body = r#"{"model":"v1","stream":true,"metadata":{"ascribe_decision":"case-2026-0412"}}"#;
    let request = parse(Api::ChatCompletions, body);
    assert_eq!(request.api(), Api::ChatCompletions);
    assert_eq!(request.model(), "v1");
    assert!(request.stream());
    assert_eq!(request.decision_reference(), Some("case-2026-0412"));
    assert_eq!(request.body(), body.as_bytes());

    let plain = parse(
        Api::Messages,
        r#"{"model":"v1","stream":null,"max_tokens":5}"#,
    );
    assert!(!plain.stream());
    assert_eq!(plain.decision_reference(), None);
    let empty = parse(
        Api::Responses,
        r#"{"model":"v1","metadata":{"ascribe_decision":""}}"#,
    );
    assert_eq!(empty.decision_reference(), None);
}

#[test]
fn rejections_say_what_is_wrong() {
    let chat = Api::ChatCompletions;
    let cases = [
        ("[1]", "request body must be a json object, found an array"),
        ("{}", "request has no `model`; name an alias"),
        (
            r#"{"model":7}"#,
            "request `model` must be a string, found a number",
        ),
        (
            r#"{"model":null}"#,
            "request `model` must be a string, found null",
        ),
        (r#"{"model":""}"#, "request `model` is empty; name an alias"),
        (
            r#"{"model":"v1","stream":"yes"}"#,
            "request `stream` must be a boolean, found a string",
        ),
        (
            r#"{"model":"v1","metadata":"x"}"#,
            "request `metadata` must be an object, found a string",
        ),
        (
            r#"{"model":"v1","metadata":{"ascribe_decision":3}}"#,
            "request `metadata.ascribe_decision` must be a string, found a number",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(rejection(chat, body), message, "{body}");
    }
    let invalid = rejection(chat, r#"{"model":"v1""#);
    assert!(
        invalid.starts_with("invalid json in request body: "),
        "{invalid}"
    );
    assert_eq!(
        rejection(Api::Embeddings, r#"{"model":"v1","stream":true}"#),
        "request asks to stream from /v1/embeddings, which does not stream"
    );
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_by_name() {
    let nested = |depth: usize| {
        let inner = format!("{}{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
        format!(r#"{{"model":"v1","input":{inner}}}"#)
    };
    assert!(parse_request(Api::Embeddings, nested(MAX_NESTING_DEPTH).as_bytes()).is_ok());
    let too_deep = rejection(Api::Embeddings, &nested(MAX_NESTING_DEPTH + 1));
    assert_eq!(too_deep, "request body nests deeper than 100 levels");
    // Far past serde_json's own limit, the message is still ours.
    assert_eq!(rejection(Api::Embeddings, &nested(10_000)), too_deep);
}

#[test]
fn upstream_body_rewrites_model_and_keeps_every_other_byte() {
    let body = concat!(
        "{\n  \"model\": \"v1\",\n",
        "  \"messages\": [{\"role\": \"user\", \"content\": \"hi \\u00e9\"}],\n",
        "  \"stream\": true,\n  \"stream_options\": {\"include_usage\": false}\n}"
    );
    let request = parse(Api::ChatCompletions, body);
    let expected = body.replace("\"v1\"", "\"gpt-4o-2024-08-06\"");
    assert_eq!(upstream_body(&request, "gpt-4o-2024-08-06"), expected);
}

#[test]
fn upstream_body_removes_the_decision_reference() {
    let cases = [
        (
            r#"{"model":"v1","metadata":{"ascribe_decision":"r"},"input":"x"}"#,
            r#"{"model":"up","input":"x"}"#,
        ),
        (
            r#"{"input":"x","model":"v1","metadata":{"ascribe_decision":"r"}}"#,
            r#"{"input":"x","model":"up"}"#,
        ),
        (
            r#"{"model":"v1","metadata":{"user":"u","ascribe_decision":"r"}}"#,
            r#"{"model":"up","metadata":{"user":"u"}}"#,
        ),
        (
            r#"{"model":"v1","metadata":{"ascribe_decision":"r", "user_id":"u"}}"#,
            r#"{"model":"up","metadata":{"user_id":"u"}}"#,
        ),
        (
            r#"{"model":"v1","metadata":{}}"#,
            r#"{"model":"up","metadata":{}}"#,
        ),
        (
            r#"{"model":"v1","metadata":null}"#,
            r#"{"model":"up","metadata":null}"#,
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            upstream_body(&parse(Api::Responses, body), "up"),
            expected,
            "{body}"
        );
    }
}

#[test]
fn upstream_body_rewrites_every_duplicate_model_key() {
    // serde_json keeps the last duplicate and some upstreams the first: rewrite them all so no
    // caller-chosen name reaches the upstream.
    let request = parse(
        Api::ChatCompletions,
        r#"{"model":"gpt-4-32k","model":"v1"}"#,
    );
    assert_eq!(request.model(), "v1");
    assert_eq!(
        upstream_body(&request, "up\"x"),
        r#"{"model":"up\"x","model":"up\"x"}"#
    );
    let reparsed: Value = serde_json::from_slice(&request.upstream_body("up")).expect("json");
    assert_eq!(reparsed, json!({"model": "up"}));
}

fn target(
    api: Api,
    upstream: Upstream,
    base_url: &str,
    api_key: Option<&str>,
    api_version: Option<&str>,
) -> Result<(String, Vec<(String, String)>), Error> {
    let target = upstream_target(api, upstream, base_url, "gpt-4o", api_key, api_version)?;
    Ok((target.url, target.headers))
}

fn pairs(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn openai_targets() {
    let base = "https://api.openai.com/v1/";
    let found = target(Api::Responses, Upstream::Openai, base, Some("sk-1"), None).expect("ok");
    let headers = pairs(&[
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-1"),
    ]);
    assert_eq!(
        found,
        ("https://api.openai.com/v1/responses".to_owned(), headers)
    );

    let local = "http://127.0.0.1:8000/v1";
    let found = target(
        Api::Embeddings,
        Upstream::OpenaiCompatible,
        local,
        None,
        None,
    );
    let found = found.expect("a self-hosted server may need no key");
    assert_eq!(found.0, "http://127.0.0.1:8000/v1/embeddings");
    assert_eq!(found.1, pairs(&[("content-type", "application/json")]));
}

#[test]
fn azure_targets_put_the_deployment_in_the_url() {
    let base = "https://res.openai.azure.com";
    let key = Some("k");
    let version = Some("2024-10-21");
    let chat = target(
        Api::ChatCompletions,
        Upstream::AzureOpenai,
        base,
        key,
        version,
    );
    let chat = chat.expect("ok");
    let url = "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions\
               ?api-version=2024-10-21";
    assert_eq!(chat.0, url);
    assert_eq!(
        chat.1,
        pairs(&[("content-type", "application/json"), ("api-key", "k")])
    );

    let responses = target(Api::Responses, Upstream::AzureOpenai, base, key, version);
    let url = "https://res.openai.azure.com/openai/responses?api-version=2024-10-21";
    assert_eq!(responses.expect("ok").0, url);
    let embeddings = target(Api::Embeddings, Upstream::AzureOpenai, base, key, version);
    let url =
        "https://res.openai.azure.com/openai/deployments/gpt-4o/embeddings?api-version=2024-10-21";
    assert_eq!(embeddings.expect("ok").0, url);
}

#[test]
fn anthropic_targets_send_a_version() {
    let base = "https://api.anthropic.com/v1";
    let found = target(
        Api::Messages,
        Upstream::Anthropic,
        base,
        Some("sk-ant"),
        None,
    );
    let headers = pairs(&[
        ("content-type", "application/json"),
        ("x-api-key", "sk-ant"),
        ("anthropic-version", "2023-06-01"),
    ]);
    assert_eq!(
        found.expect("ok"),
        ("https://api.anthropic.com/v1/messages".to_owned(), headers)
    );

    let passed = upstream_target(
        Api::Messages,
        Upstream::Anthropic,
        base,
        "m",
        Some("k"),
        Some("2099-01-01"),
    );
    assert_eq!(
        passed.expect("ok").header("anthropic-version"),
        Some("2099-01-01")
    );
}

#[test]
fn target_errors() {
    let openai = "https://api.openai.com/v1";
    let message = |result: Result<_, Error>| result.err().map(|error| error.to_string());
    let cases = [
        (
            target(Api::Messages, Upstream::Openai, openai, Some("k"), None),
            "/v1/messages cannot be served through the openai dialect; no translation between \
             dialects",
        ),
        (
            target(
                Api::ChatCompletions,
                Upstream::Anthropic,
                openai,
                Some("k"),
                None,
            ),
            "/v1/chat/completions cannot be served through the anthropic dialect; no \
             translation between dialects",
        ),
        (
            target(Api::ChatCompletions, Upstream::Openai, openai, None, None),
            "openai upstream needs an api key",
        ),
        (
            target(
                Api::ChatCompletions,
                Upstream::AzureOpenai,
                openai,
                Some("k"),
                None,
            ),
            "azure-openai upstream needs an api version, e.g. 2024-10-21",
        ),
        (
            target(
                Api::ChatCompletions,
                Upstream::AzureOpenai,
                openai,
                Some("k"),
                Some("1&x=2"),
            ),
            "invalid api version `1&x=2`; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed",
        ),
        (
            target(
                Api::ChatCompletions,
                Upstream::Openai,
                "api.openai.com",
                Some("k"),
                None,
            ),
            "invalid upstream base url `api.openai.com`; expected http(s)://host[/path]",
        ),
        (
            target(
                Api::ChatCompletions,
                Upstream::Openai,
                "https://h/v1?x=1",
                Some("k"),
                None,
            ),
            "invalid upstream base url `https://h/v1?x=1`; expected http(s)://host[/path]",
        ),
        (
            target(
                Api::ChatCompletions,
                Upstream::Openai,
                openai,
                Some("k\r\nx: y"),
                None,
            ),
            "invalid value for header `authorization`; control characters are not allowed",
        ),
    ];
    for (result, expected) in cases {
        assert_eq!(message(result).as_deref(), Some(expected));
    }
    let azure = "https://res.openai.azure.com";
    let bad = upstream_target(
        Api::ChatCompletions,
        Upstream::AzureOpenai,
        azure,
        "a/b",
        Some("k"),
        Some("v"),
    );
    assert!(matches!(
        bad,
        Err(Error::InvalidUrlPart {
            what: "deployment",
            ..
        })
    ));
    assert_eq!(
        bad.err().map(|error| error.caller_kind()),
        Some(ErrorKind::UpstreamError)
    );
}

#[test]
fn target_debug_hides_credentials() {
    let base = "https://api.anthropic.com/v1";
    let target = upstream_target(
        Api::Messages,
        Upstream::Anthropic,
        base,
        "m",
        Some("sk-ant-secret"),
        None,
    );
    let shown = format!("{:?}", target.expect("ok"));
    assert!(!shown.contains("sk-ant-secret"), "{shown}");
    assert!(
        shown.contains("<redacted>") && shown.contains("2023-06-01"),
        "{shown}"
    );
}
