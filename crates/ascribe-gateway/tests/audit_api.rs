//! `/audit`: the auditor's routes answer what `ascribe audit` answers, only for auditor keys,
//! as JSON and as HTML, and stream an export that verifies offline; on both stores.

mod common;

use std::io::Cursor;

use ascribe_audit::package::verify_package;
use ascribe_gateway::testing::StandInUpstream;
use ascribe_inference::Receipt;
use ascribe_ledger::{NoteSigner, Timestamp};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::{json, Value};

use common::{Gateway, Store};

/// A gateway with alias `v1` on a stand-in deployment, and three inferences through it: two
/// for decision `case-audit-1`, one for `case-audit-2`. Returns the inference ids and the
/// window around them.
fn with_inferences(store: Store) -> (Gateway, StandInUpstream, Vec<String>, (String, String)) {
    let gateway = Gateway::start(store);
    let upstream = StandInUpstream::start().expect("stand-in starts");
    gateway.post_ok(
        "/admin/v1/checkpoints",
        json!({"provider": "standin", "snapshot": "openai-chat"}),
        201,
    );
    let deployment = json!({
        "name": "chat", "checkpoint": "standin:openai-chat", "dialect": "openai-compatible",
        "base_url": upstream.base_url(), "upstream_model": "openai-chat",
        "expect_served": "gpt-4o-2024-08-06",
    });
    gateway.post_ok("/admin/v1/deployments", deployment, 201);
    gateway.post_ok(
        "/admin/v1/aliases",
        json!({"name": "v1", "deployment": "chat"}),
        201,
    );

    let from = Timestamp::from_unix_micros(now_micros() - 60_000_000).to_string();
    let mut ids = Vec::new();
    for decision in ["case-audit-1", "case-audit-1", "case-audit-2"] {
        let request = Request::builder()
            .method("POST")
            .uri("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", gateway.caller))
            .header("ascribe-decision", decision)
            .body(Body::from(
                json!({"model": "v1", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
            ))
            .expect("request");
        let (status, headers, _) = gateway.send_raw(request);
        assert_eq!(status, StatusCode::OK);
        let id = headers["ascribe-inference-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        ids.push(id);
    }
    let to = Timestamp::from_unix_micros(now_micros() + 60_000_000).to_string();

    // Wait for a signed tree head covering every entry, as an auditor would a second later.
    let last = ids.last().cloned().expect("three ids");
    let covered = gateway.wait_until(|| {
        let answer = audit_get(&gateway, &format!("/audit/v1/inferences/{last}"));
        answer["inclusion_proof"]["tree_size"].is_u64()
    });
    assert!(covered, "no signed tree head covered the inferences");
    (gateway, upstream, ids, (from, to))
}

fn now_micros() -> i64 {
    Timestamp::from_datetime(chrono::Utc::now()).unix_micros()
}

fn get(
    gateway: &Gateway,
    path: &str,
    authorization: Option<String>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method("GET").uri(path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    gateway.send_raw(request.body(Body::empty()).expect("request"))
}

fn audit_get(gateway: &Gateway, path: &str) -> Value {
    let (status, _, body) = get(gateway, path, Some(format!("Bearer {}", gateway.auditor)));
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).expect("JSON")
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("ascribe.test/gateway", [7; 32])
}

fn answers_match_the_ledger(store: Store) {
    let (gateway, _upstream, ids, (from, to)) = with_inferences(store);

    let answer = audit_get(&gateway, &format!("/audit/v1/inferences/{}", ids[0]));
    assert_eq!(answer["checkpoint"], "standin:openai-chat");
    assert_eq!(answer["requested_model"], "v1");
    assert_eq!(answer["served_model"], "gpt-4o-2024-08-06");
    assert_eq!(answer["identity_match"], "match");
    assert_eq!(answer["rotation"]["rotation"]["kind"], "created");
    assert_eq!(answer["rotation"]["rotation"]["actor"], "release-bot");
    let receipt = Receipt::verify(
        answer["receipt"].as_str().expect("receipt"),
        &signer().verifier(),
    )
    .expect("the receipt verifies");
    assert_eq!(receipt.inference_id, ids[0]);

    let decision = audit_get(&gateway, "/audit/v1/decisions/case-audit-1");
    let listed: Vec<&str> = decision["inferences"]
        .as_array()
        .expect("inferences")
        .iter()
        .map(|inference| inference["inference_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(listed, [ids[0].as_str(), ids[1].as_str()]);

    let window = audit_get(
        &gateway,
        &format!("/audit/v1/aliases/v1?from={from}&to={to}"),
    );
    assert_eq!(window["segments"].as_array().map(Vec::len), Some(1));
    assert_eq!(window["segments"][0]["inferences"], 3);
    let at = audit_get(&gateway, &format!("/audit/v1/aliases/v1?at={to}"));
    assert_eq!(at["segment"]["deployment"], "chat");

    let checkpoint = audit_get(&gateway, "/audit/v1/checkpoints/standin:openai-chat");
    assert_eq!(checkpoint["inferences"], 3);
    assert_eq!(checkpoint["decisions"], 2);
    assert_eq!(
        checkpoint["first_inference"]["inference_id"],
        ids[0].as_str()
    );

    let page = audit_get(
        &gateway,
        &format!("/audit/v1/inferences?from={from}&to={to}&caller=app&limit=2"),
    );
    assert_eq!(page["inferences"].as_array().map(Vec::len), Some(2));
    let next = page["next"].as_u64().expect("a next page");
    let rest = audit_get(
        &gateway,
        &format!("/audit/v1/inferences?from={from}&to={to}&caller=app&limit=2&after={next}"),
    );
    assert_eq!(rest["inferences"][0]["inference_id"], ids[2].as_str());
    assert!(rest["next"].is_null());

    let bearer = Some(format!("Bearer {}", gateway.auditor));
    let (status, headers, package) = get(
        &gateway,
        &format!("/audit/v1/export?from={from}&to={to}&format=jsonl"),
        bearer.clone(),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/jsonl");
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(
        disposition.starts_with("attachment; filename=\"ascribe-"),
        "{disposition}"
    );
    let summary = verify_package(Cursor::new(&package), &signer().verifier()).expect("verifies");
    assert!(summary.entries >= 3, "{summary:?}");
    let (_, _, csv) = get(
        &gateway,
        &format!("/audit/v1/export?from={from}&to={to}&format=csv"),
        bearer.clone(),
    );
    assert_eq!(
        String::from_utf8_lossy(&csv).lines().count(),
        4,
        "header and three rows"
    );

    let (status, _, body) = get(&gateway, "/audit/v1/inferences/inf_missing", bearer.clone());
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = get(
        &gateway,
        "/audit/v1/aliases/v1?from=yesterday&to=now",
        bearer,
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
on_both_stores!(answers_match_the_ledger);

fn only_auditor_keys_may_read(store: Store) {
    let (gateway, _upstream, ids, _) = with_inferences(store);
    let path = format!("/audit/v1/inferences/{}", ids[0]);
    for (token, status) in [
        (&gateway.caller, StatusCode::FORBIDDEN),
        (&gateway.admin, StatusCode::FORBIDDEN),
        (&gateway.revoked, StatusCode::UNAUTHORIZED),
    ] {
        let (got, _, _) = get(&gateway, &path, Some(format!("Bearer {token}")));
        assert_eq!(got, status);
    }
    let (status, headers, _) = get(&gateway, "/audit/", None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // One challenge per header, Basic first, so that a browser asks for the key.
    let challenges: Vec<&str> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|value| value.to_str().expect("ascii"))
        .collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[0].starts_with("Basic realm="), "{challenges:?}");
    assert_eq!(challenges[1], "Bearer");

    // A browser sends the key as the Basic password.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{}", gateway.auditor));
    let (status, _, page) = get(&gateway, "/audit/", Some(format!("Basic {basic}")));
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).expect("utf-8");
    assert!(
        page.contains("action=\"/audit/search\"") && page.contains(">v1<"),
        "{page}"
    );
}
on_both_stores!(only_auditor_keys_may_read);

fn pages_render_and_search_finds(store: Store) {
    let (gateway, _upstream, ids, (from, to)) = with_inferences(store);
    let bearer = || Some(format!("Bearer {}", gateway.auditor));

    let (status, headers, _) = get(&gateway, &format!("/audit/search?q={}", ids[1]), bearer());
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers["location"],
        format!("/audit/inferences/{}", ids[1]).as_str()
    );
    let (_, headers, _) = get(&gateway, "/audit/search?q=case-audit-1", bearer());
    assert_eq!(headers["location"], "/audit/decisions/case-audit-1");

    let (status, _, page) = get(&gateway, &format!("/audit/inferences/{}", ids[1]), bearer());
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).expect("utf-8");
    assert!(page.contains("standin:openai-chat") && page.contains("case-audit-1"));

    let (_, _, page) = get(&gateway, "/audit/decisions/case-audit-1", bearer());
    let page = String::from_utf8(page).expect("utf-8");
    assert_eq!(page.matches("<h2>Inference ").count(), 2);

    let (_, _, page) = get(
        &gateway,
        &format!("/audit/aliases/v1?from={from}&to={to}"),
        bearer(),
    );
    let page = String::from_utf8(page).expect("utf-8");
    assert_eq!(page.matches("<rect class=\"segment\"").count(), 1);

    // Without a window: the last 7 days, but not before the alias existed, and a form.
    let (status, _, page) = get(&gateway, "/audit/aliases/v1", bearer());
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).expect("utf-8");
    assert_eq!(page.matches("<rect class=\"segment\"").count(), 1);
    assert_eq!(page.matches("<rect class=\"gap\"").count(), 0, "{page}");
    assert!(page.contains("name=\"from\""));
    let (status, _, _) = get(&gateway, "/audit/aliases/v1?days=0", bearer());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, _, page) = get(&gateway, "/audit/checkpoints/standin:openai-chat", bearer());
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("In production"));
}
on_both_stores!(pages_render_and_search_finds);
