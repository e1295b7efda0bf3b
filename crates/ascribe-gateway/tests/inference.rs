//! The inference routes against a stand-in upstream replaying real provider shapes, on
//! SQLite and PostgreSQL: what the caller gets, and what the ledger holds for each case.

mod common;

use std::time::Duration;

use ascribe_gateway::GatewayConfig;
use ascribe_inference::Receipt;
use ascribe_ledger::NoteSigner;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{json, Value};

use common::{Gateway, StandInBench, Store};

/// Every stand-in scenario behind a gateway with a one-second upstream timeout.
fn bench(store: Store) -> StandInBench {
    let config = GatewayConfig {
        upstream_timeout: Duration::from_secs(1),
        ..GatewayConfig::default()
    };
    let scenarios = [
        (
            "openai-chat",
            "openai-compatible",
            Some("gpt-4o-2024-08-06"),
        ),
        (
            "openai-chat-cut",
            "openai-compatible",
            Some("gpt-4o-mini-2024-07-18"),
        ),
        (
            "openai-responses",
            "openai-compatible",
            Some("gpt-4o-2024-08-06"),
        ),
        (
            "openai-embeddings",
            "openai-compatible",
            Some("text-embedding-3-small"),
        ),
        (
            "openai-rate-limited",
            "openai-compatible",
            Some("gpt-4o-2024-08-06"),
        ),
        ("garbage", "openai-compatible", Some("gpt-4o-2024-08-06")),
        ("slow", "openai-compatible", Some("gpt-4o-2024-08-06")),
        (
            "anthropic-messages",
            "anthropic",
            Some("claude-sonnet-4-5-20250929"),
        ),
        (
            "anthropic-overloaded",
            "anthropic",
            Some("claude-sonnet-4-5-20250929"),
        ),
    ];
    StandInBench::start(store, config, &scenarios)
}

fn call(
    gateway: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    gateway.send_raw(request.body(Body::from(body.to_string())).expect("request"))
}

fn chat(gateway: &Gateway, model: &str, stream: bool) -> (StatusCode, HeaderMap, Vec<u8>) {
    let bearer = format!("Bearer {}", gateway.caller);
    let body =
        json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    call(
        gateway,
        "/v1/chat/completions",
        &[
            ("authorization", &bearer),
            ("ascribe-decision", "case-0001"),
        ],
        body,
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// The `inference.recorded` entry of an inference, and any later entries about it.
fn entries_about(gateway: &Gateway, inference_id: &str) -> Vec<Value> {
    gateway
        .entries()
        .into_iter()
        .filter(|entry| entry["body"]["inference_id"] == inference_id)
        .collect()
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("ascribe.test/gateway", [7; 32])
}

fn a_whole_answer_is_recorded_before_release(store: Store) {
    let bench = bench(store);
    let (status, headers, body) = chat(&bench.gateway, "openai-chat", false);
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        answer["model"], "gpt-4o-2024-08-06",
        "the answer passes through unchanged"
    );

    let id = header(&headers, "ascribe-inference-id");
    assert!(id.starts_with("inf_"), "{id}");
    assert_eq!(
        header(&headers, "ascribe-checkpoint"),
        "standin:openai-chat"
    );
    let receipt = Receipt::verify(header(&headers, "ascribe-receipt"), &signer().verifier())
        .expect("receipt");
    assert_eq!(receipt.inference_id, id);

    let entries = entries_about(&bench.gateway, id);
    let record = &entries[0];
    assert_eq!(record["kind"], "inference.recorded");
    assert_eq!(record["seq"], receipt.seq);
    assert_eq!(record["actor"], "gateway");
    let body = &record["body"];
    assert_eq!(body["requested_model"], "openai-chat");
    assert_eq!(body["caller"], "app");
    assert_eq!(body["decision"], "case-0001");
    assert_eq!(body["served"]["model"], "gpt-4o-2024-08-06");
    assert_eq!(body["served"]["system_fingerprint"], "fp_898ac29719");
    assert_eq!(body["identity_match"], "match");
    assert_eq!(body["status"], 200);
    assert_eq!(body["outcome"], "answered");
    assert_eq!(body["upstream"]["model"], "openai-chat");
    // A first fingerprint for this checkpoint is news; the second call's is not, and the
    // gateway, knowing the ledger holds it, does not even hand the writer an observation.
    assert_eq!(entries[1]["body"]["kind"], "new_system_fingerprint");
    let handed_before = entries_handed_to_writer(&bench.gateway);
    let (_, headers, _) = chat(&bench.gateway, "openai-chat", false);
    assert_eq!(
        entries_about(&bench.gateway, header(&headers, "ascribe-inference-id")).len(),
        1
    );
    assert_eq!(
        entries_handed_to_writer(&bench.gateway) - handed_before,
        1.0
    );
}

/// How many entries the ledger's writer was handed, from `ascribe_ledger_batch_entries_sum`
/// on `/metrics`.
fn entries_handed_to_writer(gateway: &Gateway) -> f64 {
    let request = Request::get("/metrics")
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = gateway.send_raw(request);
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("utf-8");
    let line = text
        .lines()
        .find(|line| line.starts_with("ascribe_ledger_batch_entries_sum "))
        .expect("the batch size histogram");
    line.split(' ')
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("a number")
}
on_both_stores!(a_whole_answer_is_recorded_before_release);

fn a_stream_records_identity_first_and_completion_last(store: Store) {
    let bench = bench(store);
    let (status, headers, body) = chat(&bench.gateway, "openai-chat", true);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    let text = String::from_utf8(body).expect("utf-8");
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "the whole stream passes through: {text}"
    );

    let id = header(&headers, "ascribe-inference-id").to_owned();
    let gateway = &bench.gateway;
    assert!(gateway.wait_until(|| entries_about(gateway, &id)
        .iter()
        .any(|e| e["kind"] == "inference.completed")));
    let entries = entries_about(gateway, &id);
    assert_eq!(entries[0]["body"]["outcome"], "stream_open");
    assert_eq!(
        entries[0]["body"]["served"]["model"],
        "gpt-4o-mini-2024-07-18"
    );
    assert_eq!(
        entries[0]["body"]["identity_match"], "mismatch",
        "the stream fixture serves mini"
    );
    assert_eq!(entries[0]["body"]["mismatch_kind"], "different_model");
    let completion = &entries.last().expect("completion")["body"];
    assert_eq!(completion["completed"], true);
    assert_eq!(completion["truncated"], false);
    assert_eq!(completion["n_bytes"], text.len());
    let observations: Vec<_> = entries
        .iter()
        .filter(|e| e["kind"] == "observation.recorded")
        .collect();
    assert_eq!(observations[0]["body"]["kind"], "served_model_mismatch");
}
on_both_stores!(a_stream_records_identity_first_and_completion_last);

fn a_cut_stream_is_recorded_as_truncated(store: Store) {
    let bench = bench(store);
    let (status, headers, _) = chat(&bench.gateway, "openai-chat-cut", true);
    assert_eq!(
        status, 200,
        "the identity was recorded and the stream had started"
    );
    let id = header(&headers, "ascribe-inference-id").to_owned();
    let gateway = &bench.gateway;
    assert!(gateway.wait_until(|| entries_about(gateway, &id)
        .iter()
        .any(|e| e["kind"] == "inference.completed")));
    let completion = entries_about(gateway, &id).pop().expect("completion");
    assert_eq!(completion["body"]["truncated"], true);
    assert_eq!(completion["body"]["completed"], false);
    assert!(completion["body"]["error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
}
on_both_stores!(a_cut_stream_is_recorded_as_truncated);

fn upstream_failures_are_recorded_with_their_status(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    let cases = [
        ("openai-rate-limited", 429, "upstream_error"),
        ("garbage", 502, "upstream_error"),
        ("slow", 504, "upstream_timeout"),
    ];
    for (model, status, outcome) in cases {
        let (got, headers, body) = chat(gateway, model, false);
        assert_eq!(
            got.as_u16(),
            status,
            "{model}: {}",
            String::from_utf8_lossy(&body)
        );
        let error: Value = serde_json::from_slice(&body).expect("an error body in OpenAI's shape");
        assert!(error["error"]["message"].is_string(), "{model}: {error}");
        let id = header(&headers, "ascribe-inference-id");
        let record = &entries_about(gateway, id)[0]["body"];
        assert_eq!(
            (record["status"].as_u64(), record["outcome"].as_str()),
            (Some(u64::from(status)), Some(outcome)),
            "{model}"
        );
        assert_eq!(
            record["served"]["model"],
            Value::Null,
            "{model}: never filled from the request"
        );
    }
    let (_, headers, _) = chat(gateway, "openai-rate-limited", false);
    assert_eq!(header(&headers, "retry-after"), "7");

    let key = gateway.caller.clone();
    let body = json!({"model": "anthropic-overloaded", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, body) = call(
        gateway,
        "/v1/messages",
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
        body,
    );
    assert_eq!(status.as_u16(), 529);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json")["error"]["type"],
        "overloaded_error"
    );
    let record = &entries_about(gateway, header(&headers, "ascribe-inference-id"))[0]["body"];
    assert_eq!(record["status"], 529);
}
on_both_stores!(upstream_failures_are_recorded_with_their_status);

fn anthropic_messages_stream_through_the_x_api_key(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    let body = json!({"model": "anthropic-messages", "stream": true, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let key = gateway.caller.clone();
    let (status, headers, body) = call(
        gateway,
        "/v1/messages",
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
        body,
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("message_stop"));
    let id = header(&headers, "ascribe-inference-id").to_owned();
    assert!(gateway.wait_until(|| entries_about(gateway, &id)
        .iter()
        .any(|e| e["kind"] == "inference.completed")));
    let entries = entries_about(gateway, &id);
    assert_eq!(
        entries[0]["body"]["served"]["model"],
        "claude-sonnet-4-5-20250929"
    );
    assert_eq!(entries[0]["body"]["identity_match"], "match");
    assert_eq!(
        entries.last().expect("completion")["body"]["completed"],
        true
    );
}
on_both_stores!(anthropic_messages_stream_through_the_x_api_key);

/// A path, its headers, a body, and the status it must get.
type RefusedCase<'a> = (&'a str, &'a [(&'a str, &'a str)], Value, u16);

fn bad_requests_are_refused_in_the_dialects_shape_and_not_recorded(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    let size = gateway.entries().len();
    let bearer = format!("Bearer {}", gateway.caller);
    let admin = format!("Bearer {}", gateway.admin);
    let cases: [RefusedCase; 5] = [
        (
            "/v1/chat/completions",
            &[("authorization", &bearer)],
            json!({"model": "nope", "messages": []}),
            404,
        ),
        (
            "/v1/chat/completions",
            &[("authorization", &bearer)],
            json!({"messages": []}),
            400,
        ),
        (
            "/v1/chat/completions",
            &[],
            json!({"model": "openai-chat"}),
            401,
        ),
        (
            "/v1/chat/completions",
            &[("authorization", &admin)],
            json!({"model": "openai-chat"}),
            403,
        ),
        (
            "/v1/messages",
            &[("x-api-key", &gateway.caller)],
            json!({"model": "openai-chat", "max_tokens": 1, "messages": []}),
            400,
        ),
    ];
    for (path, headers, body, status) in cases {
        let (got, _, body) = call(gateway, path, headers, body);
        assert_eq!(
            got.as_u16(),
            status,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        let error: Value = serde_json::from_slice(&body).expect("json error");
        assert!(error["error"]["message"].is_string(), "{error}");
        if path == "/v1/messages" {
            assert_eq!(error["type"], "error", "Anthropic's shape: {error}");
        } else {
            assert!(
                error["error"]["type"].is_string(),
                "OpenAI's shape: {error}"
            );
        }
    }
    assert_eq!(gateway.entries().len(), size, "nothing was recorded");
}
on_both_stores!(bad_requests_are_refused_in_the_dialects_shape_and_not_recorded);

fn no_answer_leaves_when_the_ledger_cannot_record_it(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    gateway.execute("DROP TABLE inferences");
    let (status, headers, body) = chat(gateway, "openai-chat", false);
    assert_eq!(status.as_u16(), 503);
    assert!(
        !String::from_utf8_lossy(&body).contains("gpt-4o-2024-08-06"),
        "no answer released"
    );
    assert_eq!(header(&headers, "ascribe-inference-id"), "");
}
on_both_stores!(no_answer_leaves_when_the_ledger_cannot_record_it);

fn rotating_between_two_calls_names_two_checkpoints(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    let (_, first, _) = chat(gateway, "openai-chat", false);
    let rotation = json!({"to": "openai-responses", "kind": "upgrade", "reason": "test"});
    gateway.post_ok("/admin/v1/aliases/openai-chat/rotate", rotation, 200);
    let (_, second, _) = chat(gateway, "openai-chat", false);
    assert_eq!(header(&first, "ascribe-checkpoint"), "standin:openai-chat");
    assert_eq!(
        header(&second, "ascribe-checkpoint"),
        "standin:openai-responses"
    );
}
on_both_stores!(rotating_between_two_calls_names_two_checkpoints);

fn an_alias_may_answer_with_the_requested_name_while_the_record_keeps_the_served_one(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    let alias = json!({"name": "pinned", "deployment": "openai-chat", "answer_model": "requested"});
    gateway.post_ok("/admin/v1/aliases", alias, 201);

    let (status, headers, body) = chat(gateway, "pinned", false);
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["model"], "pinned");
    assert_eq!(
        answer["system_fingerprint"], "fp_898ac29719",
        "the rest is unchanged"
    );
    let record = &entries_about(gateway, header(&headers, "ascribe-inference-id"))[0]["body"];
    assert_eq!(record["served"]["model"], "gpt-4o-2024-08-06");

    let (_, headers, body) = chat(gateway, "pinned", true);
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.contains(r#""model":"pinned""#), "{text}");
    assert!(!text.contains("gpt-4o-mini-2024-07-18"), "{text}");
    let id = header(&headers, "ascribe-inference-id").to_owned();
    assert!(gateway.wait_until(|| entries_about(gateway, &id)
        .iter()
        .any(|e| e["kind"] == "inference.completed")));
    let completion = entries_about(gateway, &id).pop().expect("completion");
    assert_eq!(
        completion["body"]["served"]["model"],
        "gpt-4o-mini-2024-07-18"
    );
}
on_both_stores!(an_alias_may_answer_with_the_requested_name_while_the_record_keeps_the_served_one);

fn full_retention_keeps_request_and_response_bodies_by_digest(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    let deployment = json!({
        "name": "kept", "checkpoint": "standin:openai-chat", "dialect": "openai-compatible",
        "base_url": bench.upstream.base_url(), "upstream_model": "openai-chat",
        "expect_served": "gpt-4o-2024-08-06", "retention": "full",
    });
    gateway.post_ok("/admin/v1/deployments", deployment, 201);
    gateway.post_ok(
        "/admin/v1/aliases",
        json!({"name": "kept", "deployment": "kept"}),
        201,
    );

    let mut backend = ascribe_store::open_backend(&gateway.location, false).expect("opens");
    let (_, headers, body) = chat(gateway, "kept", false);
    let record = &entries_about(gateway, header(&headers, "ascribe-inference-id"))[0]["body"];
    let response = record["retained"]["response"]
        .as_str()
        .expect("response kept");
    let kept = ascribe_inference::queries::payload(backend.as_mut(), response).expect("reads");
    assert_eq!(kept.as_deref(), Some(body.as_slice()));
    let request = record["retained"]["request"]
        .as_str()
        .expect("request kept");
    let kept = ascribe_inference::queries::payload(backend.as_mut(), request).expect("reads");
    let kept: Value = serde_json::from_slice(&kept.expect("request")).expect("json");
    assert_eq!(kept["model"], "kept", "the caller's request, as sent");

    let (_, headers, body) = chat(gateway, "kept", true);
    let id = header(&headers, "ascribe-inference-id").to_owned();
    assert!(gateway.wait_until(|| entries_about(gateway, &id)
        .iter()
        .any(|e| e["kind"] == "inference.completed")));
    let completion = entries_about(gateway, &id).pop().expect("completion");
    let digest = completion["body"]["retained_response"]
        .as_str()
        .expect("stream kept");
    let kept = ascribe_inference::queries::payload(backend.as_mut(), digest).expect("reads");
    assert_eq!(kept.as_deref(), Some(body.as_slice()));

    let (_, headers, _) = chat(gateway, "openai-chat", false);
    let record = &entries_about(gateway, header(&headers, "ascribe-inference-id"))[0]["body"];
    assert_eq!(
        record["retained"],
        Value::Null,
        "digest retention keeps no body"
    );
}
on_both_stores!(full_retention_keeps_request_and_response_bodies_by_digest);

fn azure_deployments_are_called_by_deployment_name_with_an_api_key(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    std::env::set_var("ASCRIBE_TEST_STANDIN_AZURE_KEY", "azure-standin-key");
    gateway.post_ok(
        "/admin/v1/checkpoints",
        json!({"provider": "azure", "snapshot": "gpt-4o-2024-11-20"}),
        201,
    );
    let deployment = json!({
        "name": "azure-east", "checkpoint": "azure:gpt-4o-2024-11-20", "dialect": "azure-openai",
        "base_url": format!("{}?api-version=2024-10-21", bench.upstream.root_url()),
        "upstream_model": "gpt-4o-2024-11-20", "api_key_env": "ASCRIBE_TEST_STANDIN_AZURE_KEY",
    });
    gateway.post_ok("/admin/v1/deployments", deployment, 201);
    gateway.post_ok(
        "/admin/v1/aliases",
        json!({"name": "azure", "deployment": "azure-east"}),
        201,
    );

    let (status, headers, body) = chat(gateway, "azure", false);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let record = &entries_about(gateway, header(&headers, "ascribe-inference-id"))[0]["body"];
    assert_eq!(record["served"]["model"], "gpt-4o-2024-11-20");
    assert_eq!(
        record["served"]["headers"]["x-ms-deployment-name"],
        "gpt-4o-2024-11-20"
    );
    assert_eq!(record["served"]["headers"]["x-ms-region"], "East US 2");
    assert_eq!(record["identity_match"], "match");

    let (status, headers, _) = chat(gateway, "azure", true);
    assert_eq!(status, 200);
    let id = header(&headers, "ascribe-inference-id").to_owned();
    let record = &entries_about(gateway, &id)[0]["body"];
    // The recorded stream came from a deployment serving the August snapshot; its first
    // chunk (prompt filter results) names no model, the second does.
    assert_eq!(record["served"]["model"], "gpt-4o-2024-08-06");
    assert_eq!(record["identity_match"], "mismatch");
    assert_eq!(record["mismatch_kind"], "newer_snapshot");
}
on_both_stores!(azure_deployments_are_called_by_deployment_name_with_an_api_key);

fn models_are_listed_and_retrieved_and_other_routes_refused_in_the_callers_shape(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    let get = |path: &str| {
        let request = Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {}", gateway.caller))
            .body(Body::empty())
            .expect("request");
        gateway.send_raw(request)
    };
    let (status, _, body) = get("/v1/models/openai-chat");
    assert_eq!(status, 200);
    let model: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (model["id"].as_str(), model["object"].as_str()),
        (Some("openai-chat"), Some("model"))
    );

    let (status, _, body) = get("/v1/models/nope");
    assert_eq!(status, 404);
    let error: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(error["error"]["code"], "model_not_found");

    let (status, _, body) = call(gateway, "/v1/messages/count_tokens", &[], json!({}));
    assert_eq!(status, 404);
    let error: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(error["type"], "error", "Anthropic's shape: {error}");

    let (_, headers, _) = chat(gateway, "openai-chat", false);
    assert_eq!(
        header(&headers, "x-request-id"),
        "req_standin",
        "the provider's request id"
    );
}
on_both_stores!(models_are_listed_and_retrieved_and_other_routes_refused_in_the_callers_shape);

fn a_self_hosted_server_echoing_the_model_name_discloses_nothing(store: Store) {
    let bench = bench(store);
    let gateway = &bench.gateway;
    gateway.post_ok(
        "/admin/v1/checkpoints",
        json!({"provider": "standin", "snapshot": "echo"}),
        201,
    );
    let deployment = json!({
        "name": "echo", "checkpoint": "standin:echo", "dialect": "openai-compatible",
        "base_url": bench.upstream.base_url(), "upstream_model": "echo",
    });
    gateway.post_ok("/admin/v1/deployments", deployment, 201);
    gateway.post_ok(
        "/admin/v1/aliases",
        json!({"name": "local", "deployment": "echo"}),
        201,
    );
    let (status, headers, _) = chat(gateway, "local", false);
    assert_eq!(status, 200);
    let record = &entries_about(gateway, header(&headers, "ascribe-inference-id"))[0]["body"];
    assert_eq!(record["served"]["model"], "echo", "recorded as sent");
    assert_eq!(
        record["identity_match"], "undisclosed",
        "an echo is not a match"
    );
}
on_both_stores!(a_self_hosted_server_echoing_the_model_name_discloses_nothing);
