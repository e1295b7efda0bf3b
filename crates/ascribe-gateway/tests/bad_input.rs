//! Malformed caller requests against the in-process gateway, on both dialects (OpenAI's
//! `/v1/chat/completions`, Anthropic's `/v1/messages`) and on both stores.
//!
//! A corpus of several hundred requests, most generated (every prefix of a good body, random
//! bytes that are not JSON, nesting at many depths, every way to send a key wrongly), each
//! with one thing wrong. Every one must get the status its class calls for (never a 2xx,
//! never a 5xx), a JSON body in the caller's dialect (the gateway's own shape on the admin and
//! audit routes) whose message names what is wrong, reach no upstream and record nothing in
//! the ledger; and the gateway must answer a good request of each dialect afterwards.
//!
//! Fields the gateway does not read (`messages`, `max_tokens`, ...) are the provider's to
//! judge: a call with a wrongly typed one is forwarded as sent and recorded like any call
//! that reached an upstream (docs/gateway.md). That is checked too, apart from the corpus.
//!
//! Fast and long versions are the same corpus (it is bounded and deterministic); under 2 s a
//! store once built.

mod common;

use std::collections::BTreeMap;

use ascribe_gateway::GatewayConfig;
use axum::body::Body;
use axum::http::{HeaderValue, Request};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use common::{StandInBench, Store};

/// The request body limit the gateway under test runs with: small, so that bodies over it
/// are cheap to build.
const BODY_LIMIT: usize = 256 * 1024;

/// The longest decision reference the gateway takes (docs/gateway.md).
const MAX_DECISION: usize = 200;

/// The error body's layout a caller must get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
    /// The admin and audit routes: `{"error": {"type", "message"}}`.
    Gateway,
}

/// One of the two caller-facing APIs.
#[derive(Clone, Copy)]
struct Dialect {
    path: &'static str,
    shape: Shape,
    /// An alias whose deployment speaks this dialect.
    alias: &'static str,
    /// An alias whose deployment speaks the other one.
    other_alias: &'static str,
}

const OPENAI: Dialect = Dialect {
    path: "/v1/chat/completions",
    shape: Shape::OpenAi,
    alias: "openai-chat",
    other_alias: "anthropic-messages",
};

const ANTHROPIC: Dialect = Dialect {
    path: "/v1/messages",
    shape: Shape::Anthropic,
    alias: "anthropic-messages",
    other_alias: "openai-chat",
};

/// Header name and raw value bytes (values need not be UTF-8).
type Headers = Vec<(&'static str, Vec<u8>)>;

impl Dialect {
    /// The headers its SDK sends with `token`.
    fn auth(&self, token: &str) -> Headers {
        match self.shape {
            Shape::Anthropic => vec![
                ("x-api-key", token.as_bytes().to_vec()),
                ("anthropic-version", b"2023-06-01".to_vec()),
            ],
            _ => vec![("authorization", format!("Bearer {token}").into_bytes())],
        }
    }

    /// A good request body for `model`.
    fn body_for(&self, model: Value) -> Value {
        let messages = json!([{"role": "user", "content": "hi"}]);
        match self.shape {
            Shape::Anthropic => json!({"model": model, "max_tokens": 8, "messages": messages}),
            _ => json!({"model": model, "messages": messages}),
        }
    }

    /// A good request body, with a decision reference.
    fn good_body(&self) -> Value {
        let mut body = self.body_for(self.alias.into());
        body["stream"] = false.into();
        body["metadata"] = json!({"ascribe_decision": "case-2026-0412"});
        body
    }

    /// The good body with `member` set to `value`.
    fn with(&self, member: &str, value: Value) -> Vec<u8> {
        let mut body = self.good_body();
        body[member] = value;
        body.to_string().into_bytes()
    }
}

/// One malformed request and what it must get.
struct Case {
    class: &'static str,
    method: &'static str,
    path: String,
    headers: Headers,
    body: Vec<u8>,
    status: u16,
    /// A word the error message must contain (case-insensitive).
    word: &'static str,
    shape: Shape,
}

/// The keys the requests are made with.
struct Keys {
    caller: String,
    admin: String,
    auditor: String,
    revoked_admin: String,
    revoked_caller: String,
}

/// Builds the cases of one dialect.
struct Corpus<'a> {
    dialect: Dialect,
    keys: &'a Keys,
    cases: Vec<Case>,
}

impl Corpus<'_> {
    /// A request with the caller key, as JSON, to the dialect's endpoint.
    fn body(&mut self, class: &'static str, body: Vec<u8>, status: u16, word: &'static str) {
        let mut headers = self.dialect.auth(&self.keys.caller);
        headers.push(("content-type", b"application/json".to_vec()));
        self.headers(class, headers, body, status, word);
    }

    /// A request with the caller key and the body sent with each content type a caller might
    /// use (the inference routes do not read it): JSON, plain text, none.
    fn body_any_type(&mut self, class: &'static str, body: &[u8], status: u16, word: &'static str) {
        for content_type in [Some("application/json"), Some("text/plain"), None] {
            let mut headers = self.dialect.auth(&self.keys.caller);
            if let Some(content_type) = content_type {
                headers.push(("content-type", content_type.as_bytes().to_vec()));
            }
            self.headers(class, headers, body.to_vec(), status, word);
        }
    }

    /// A request with exactly `headers`.
    fn headers(
        &mut self,
        class: &'static str,
        headers: Headers,
        body: Vec<u8>,
        status: u16,
        word: &'static str,
    ) {
        self.cases.push(Case {
            class,
            method: "POST",
            path: self.dialect.path.to_owned(),
            headers,
            body,
            status,
            word,
            shape: self.dialect.shape,
        });
    }

    /// The good body, sent with `headers` instead of the caller's key.
    fn auth(&mut self, class: &'static str, headers: Headers, status: u16, word: &'static str) {
        let mut headers = headers;
        headers.push(("content-type", b"application/json".to_vec()));
        let body = self.dialect.good_body().to_string().into_bytes();
        self.headers(class, headers, body, status, word);
    }
}

/// A deterministic stream of pseudo-random bytes (xorshift), so the corpus is the same on
/// every run.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }

    fn take(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next()).collect()
    }
}

fn not_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_err()
}

/// Every malformed request of one dialect.
fn dialect_cases(dialect: Dialect, keys: &Keys) -> Vec<Case> {
    let mut corpus = Corpus {
        dialect,
        keys,
        cases: Vec::new(),
    };
    let good = dialect.good_body().to_string();
    let alias = dialect.alias;

    // Not JSON at all, sent with every content type.
    let literal = [
        "{".to_owned(),
        "}".to_owned(),
        "{\"model\":}".to_owned(),
        format!("{{\"model\":\"{alias}\",}}"),
        format!("{{\"model\":\"{alias}\" \"stream\":false}}"),
        format!("{{'model':'{alias}'}}"),
        format!("{{model:\"{alias}\"}}"),
        format!("model={alias}&stream=false"),
        format!("{{\"model\":\"{alias}\",\"temperature\":NaN}}"),
        format!("{{\"model\":\"{alias}\",\"temperature\":Infinity}}"),
        format!("{{\"model\":\"{alias}\",\"n\":01}}"),
        format!("{{\"model\":\"{alias}\",\"n\":1e}}"),
        format!("{{\"model\":\"{alias}\"}} trailing"),
        format!("{{\"model\":\"{alias}\"}}{{\"model\":\"{alias}\"}}"),
        format!("{{\"model\":\"{alias}\\q\"}}"),
        format!("{{\"model\":\"{alias}\\u12\"}}"),
        format!("{{\"model\":\"{alias}\nx\"}}"),
        format!("{{\"model\":\"{alias}\",\"x\":undefined}}"),
        format!("<model>{alias}</model>"),
        format!("// comment\n{good}"),
        "nul\u{0}l".to_owned(),
        "tru".to_owned(),
    ];
    for body in &literal {
        assert!(not_json(body.as_bytes()), "{body}");
        corpus.body_any_type("invalid_json", body.as_bytes(), 400, "json");
    }
    let mut random = Bytes(0x9e37_79b9_7f4a_7c15);
    let mut made = 0;
    while made < 40 {
        let len = 1 + usize::from(random.next() % 64);
        let bytes = random.take(len);
        if not_json(&bytes) {
            corpus.body_any_type("invalid_json", &bytes, 400, "json");
            made += 1;
        }
    }

    // Every prefix of a good body: cut anywhere, including before the first byte.
    for end in 0..good.len() {
        corpus.body(
            "truncated_json",
            good.as_bytes()[..end].to_vec(),
            400,
            "json",
        );
    }
    for body in ["", " ", "\n", "\r\n\t "] {
        corpus.body_any_type("empty_body", body.as_bytes(), 400, "json");
    }

    // Not UTF-8, or UTF-8 that JSON refuses.
    let utf8: [&[u8]; 10] = [
        b"{\"model\":\"openai-\xff\"}",
        b"{\"mod\xc3el\":\"x\"}",
        b"{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc0\xaf\"}]}",
        b"{\"model\":\"x\xe2\x82\"}",
        b"{\"model\":\"\xed\xa0\x80\"}",
        b"{\"model\":\"\\ud800\"}",
        b"{\"model\":\"\\udc00x\"}",
        b"\xef\xbb\xbf{\"model\":\"x\"}",
        b"\xfe\xff\x00{\x00}",
        b"{\"model\":\"x\",\"metadata\":{\"ascribe_decision\":\"\xf8\x88\x80\x80\x80\"}}",
    ];
    for body in utf8 {
        assert!(not_json(body), "{}", String::from_utf8_lossy(body));
        corpus.body_any_type("invalid_utf8", body, 400, "json");
    }

    // JSON, but not an object.
    let scalars = [
        "[]",
        "[{}]",
        "\"openai-chat\"",
        "1",
        "-0.5",
        "null",
        "true",
        "false",
    ];
    let mut not_objects: Vec<String> = scalars.iter().map(|body| (*body).to_owned()).collect();
    not_objects.push(format!("[{good}]"));
    for body in not_objects {
        corpus.body("not_an_object", body.into_bytes(), 400, "object");
    }

    // The members the gateway reads, missing or of the wrong type.
    let no_model = {
        let mut body = dialect.good_body();
        body.as_object_mut().map(|object| object.remove("model"));
        body
    };
    for body in [
        json!({}),
        no_model.clone(),
        json!({"Model": alias}),
        json!({"model ": alias}),
        json!({"models": [alias]}),
    ] {
        corpus.body("missing_model", body.to_string().into_bytes(), 400, "model");
    }
    let wrong_models = [
        json!(1),
        json!(1.5),
        json!(-1),
        json!(true),
        json!(null),
        json!([]),
        json!([alias]),
        json!({"name": alias}),
        json!(""),
    ];
    for model in wrong_models {
        corpus.body(
            "wrong_type_model",
            dialect.with("model", model),
            400,
            "model",
        );
    }
    let wrong_streams = [
        json!("yes"),
        json!("true"),
        json!("false"),
        json!(1),
        json!(0),
        json!([]),
        json!({}),
    ];
    for stream in wrong_streams {
        corpus.body(
            "wrong_type_stream",
            dialect.with("stream", stream),
            400,
            "stream",
        );
    }
    for metadata in [json!("case-1"), json!(1), json!([]), json!(true)] {
        let body = dialect.with("metadata", metadata);
        corpus.body("wrong_type_metadata", body, 400, "metadata");
    }
    for decision in [
        json!(1),
        json!(true),
        json!([]),
        json!({}),
        json!(["case-1"]),
    ] {
        let body = dialect.with("metadata", json!({ "ascribe_decision": decision }));
        corpus.body("wrong_type_decision", body, 400, "ascribe_decision");
    }

    // Nesting beyond the limit (100), in arrays, objects and both, up to a depth no
    // recursive parser survives.
    for depth in [100, 101, 127, 128, 129, 1_000, 20_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let mixed = format!("{}{}", "[{\"a\":".repeat(depth / 2), "}]".repeat(depth / 2));
        for nested in [arrays, objects, mixed] {
            let body = format!("{{\"model\":\"{alias}\",\"x\":{nested}}}");
            corpus.body("deep_nesting", body.into_bytes(), 400, "nest");
        }
        let bare = format!("{}{}", "[".repeat(depth + 1), "]".repeat(depth + 1));
        corpus.body("deep_nesting", bare.into_bytes(), 400, "nest");
    }

    // Large strings under the body limit: the size alone changes nothing.
    let huge = "x".repeat(100 * 1024);
    corpus.body(
        "huge_string",
        dialect.with("model", huge.clone().into()),
        404,
        "does not exist",
    );
    let mut body = dialect.body_for(json!(7));
    body["messages"] = json!([{"role": "user", "content": "y".repeat(200 * 1024)}]);
    corpus.body("huge_string", body.to_string().into_bytes(), 400, "model");
    let decision = json!({ "ascribe_decision": huge.clone() });
    corpus.body(
        "huge_string",
        dialect.with("metadata", decision),
        400,
        "decision",
    );
    let mut body = dialect.good_body();
    body[huge.as_str()] = json!(1);
    body["stream"] = json!("yes");
    corpus.body("huge_string", body.to_string().into_bytes(), 400, "stream");

    // Bodies over the limit, valid JSON or not.
    for size in [BODY_LIMIT + 1, BODY_LIMIT * 2, BODY_LIMIT * 8] {
        let mut body = dialect.good_body();
        body["messages"] = json!([{"role": "user", "content": "z".repeat(size)}]);
        corpus.body_any_type("over_limit", body.to_string().as_bytes(), 413, "larger");
        let garbage = vec![b'{'; size];
        corpus.body("over_limit", garbage, 413, "larger");
    }

    // Names that are neither an alias nor a served checkpoint.
    let unknown = [
        "nope".to_owned(),
        alias.to_uppercase(),
        format!(" {alias}"),
        format!("{alias} "),
        format!("{alias}\n"),
        format!("{alias}\u{0}"),
        format!("\u{0}{alias}"),
        format!("{alias}\u{1b}[31m"),
        format!("{alias}\u{7f}"),
        "gpt-4o".to_owned(),
        "standin:nope".to_owned(),
        format!("sha256:{}", "0".repeat(64)),
        "é".to_owned(),
        "🙂".to_owned(),
        "../admin/v1/aliases".to_owned(),
        "%00".to_owned(),
        "' OR '1'='1".to_owned(),
        "x'; DROP TABLE inferences; --".to_owned(),
        "%".to_owned(),
        "_".to_owned(),
        "*".to_owned(),
        "\\".to_owned(),
        "k".repeat(10_000),
    ];
    for model in unknown {
        let body = dialect.with("model", model.into());
        corpus.body("unknown_alias", body, 404, "does not exist");
    }
    let body = dialect.with("model", dialect.other_alias.into());
    corpus.body("wrong_dialect", body, 400, "matching api");

    // Keys: none, malformed, unknown, revoked, or of another role.
    let version = ("anthropic-version", b"2023-06-01".to_vec());
    corpus.auth("missing_auth", vec![], 401, "missing key");
    corpus.auth("missing_auth", vec![version.clone()], 401, "missing key");
    let caller = keys.caller.as_bytes();
    let malformed: [(&'static str, Vec<u8>); 14] = [
        ("authorization", b"Bearer".to_vec()),
        ("authorization", b"Bearer ".to_vec()),
        ("authorization", b"Bearer    ".to_vec()),
        ("authorization", b"Basic dXNlcjpwYXNz".to_vec()),
        ("authorization", [b"Token ", caller].concat()),
        ("authorization", [b"Bearer\t", caller].concat()),
        ("authorization", caller.to_vec()),
        ("authorization", b"Bearer \xff\xfe".to_vec()),
        ("authorization", [b"Bearer ", caller, b"\x80"].concat()),
        ("authorization", b"".to_vec()),
        ("x-api-key", b"".to_vec()),
        ("x-api-key", b"   ".to_vec()),
        ("x-api-key", b"\xff".to_vec()),
        ("x-api-key", [caller, b"\xe9"].concat()),
    ];
    for header in malformed {
        corpus.auth(
            "malformed_auth",
            vec![header, version.clone()],
            401,
            "missing key",
        );
    }
    let mut changed = keys.caller.clone().into_bytes();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).expect("ascii");
    let unknown_keys = [
        "asc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "sk-proj-0123456789".to_owned(),
        changed,
        keys.caller[..keys.caller.len() - 1].to_owned(),
        format!("{}x", keys.caller),
        keys.caller.to_uppercase(),
        format!("{} {}", keys.caller, keys.caller),
        "a".repeat(8 * 1024),
        "%00".to_owned(),
        "' OR '1'='1".to_owned(),
    ];
    for token in &unknown_keys {
        corpus.auth(
            "unknown_key",
            dialect.auth(token),
            401,
            "unknown or revoked",
        );
    }
    // A bearer token is read first: a good `x-api-key` does not rescue a bad one.
    let both = vec![
        ("authorization", b"Bearer asc_nope".to_vec()),
        ("x-api-key", caller.to_vec()),
        version.clone(),
    ];
    corpus.auth("unknown_key", both, 401, "unknown or revoked");
    for token in [&keys.revoked_caller, &keys.revoked_admin] {
        corpus.auth("revoked_key", dialect.auth(token), 401, "revoked");
    }
    for token in [&keys.admin, &keys.auditor] {
        corpus.auth("wrong_role", dialect.auth(token), 403, "caller key");
    }

    // The decision reference, in the header: what a header can carry that is not 1 to 200
    // printable ASCII characters. CR, LF, NUL and DEL cannot be put in a header at all
    // (checked in `forbidden_header_bytes_never_reach_the_gateway`).
    let header_decisions: [Vec<u8>; 8] = [
        b"".to_vec(),
        b"x".repeat(MAX_DECISION + 1),
        b"x".repeat(10_000),
        b"case\t1".to_vec(),
        b"\t".to_vec(),
        "case-é".as_bytes().to_vec(),
        b"case-\x80".to_vec(),
        b"\xff\xfe".to_vec(),
    ];
    for decision in header_decisions {
        let mut headers = dialect.auth(&keys.caller);
        headers.push(("content-type", b"application/json".to_vec()));
        headers.push(("ascribe-decision", decision));
        let body = dialect.with("metadata", json!({}));
        corpus.headers("decision_header", headers, body, 400, "decision reference");
    }
    // And in the body, where any character can be written.
    let body_decisions = [
        "a\r\nX-Evil: 1".to_owned(),
        "a\nb".to_owned(),
        "a\rb".to_owned(),
        "a\u{0}b".to_owned(),
        "\u{7f}".to_owned(),
        "\u{1b}[31mred".to_owned(),
        "case-é".to_owned(),
        "case\u{2028}1".to_owned(),
        "\t".to_owned(),
        "x".repeat(MAX_DECISION + 1),
        "\u{feff}case".to_owned(),
    ];
    for decision in body_decisions {
        let body = dialect.with("metadata", json!({ "ascribe_decision": decision }));
        corpus.body("decision_body", body, 400, "decision reference");
    }

    // Members the gateway acts on, sent twice: the gateway and an upstream could each read a
    // different one (a duplicate `model` is accepted: every copy is rewritten).
    let inner = &good[1..good.len() - 1];
    let model = format!("\"model\":\"{alias}\"");
    let twice = "\"ascribe_decision\":\"a\",\"ascribe_decision\":\"b\"";
    let escaped = "\"ascribe_decision\":\"a\",\"ascribe\\u005fdecision\":\"b\"";
    let duplicates = [
        format!("{{{inner},\"stream\":true}}"),
        format!("{{\"stream\":true,{inner}}}"),
        format!("{{{inner},\"metadata\":{{\"team\":\"risk\"}}}}"),
        format!("{{{model},\"metadata\":{{{twice}}}}}"),
        format!("{{{model},\"metadata\":{{{escaped}}}}}"),
    ];
    for body in duplicates {
        corpus.body("duplicate_member", body.into_bytes(), 400, "more than once");
    }

    // Methods the endpoint does not take.
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let mut headers = dialect.auth(&keys.caller);
        headers.push(("content-type", b"application/json".to_vec()));
        let body = good.clone().into_bytes();
        corpus.headers("wrong_method", headers, body, 405, "method");
        corpus.cases.last_mut().expect("just pushed").method = method;
    }

    if dialect.shape == Shape::OpenAi {
        let mut body = dialect.good_body();
        body["model"] = "openai-embeddings".into();
        body["stream"] = true.into();
        body["input"] = "hi".into();
        corpus.body(
            "stream_on_embeddings",
            body.to_string().into_bytes(),
            400,
            "stream",
        );
        corpus.cases.last_mut().expect("just pushed").path = "/v1/embeddings".to_owned();

        // The alias in a path: `GET /v1/models/{model}`, as the SDK's `models.retrieve`.
        let names = [
            "nope",
            "%00",
            "openai-chat%00",
            "%F0%9F%99%82",
            "%20openai-chat",
            "%25",
        ];
        for name in names {
            corpus.auth(
                "unknown_model_path",
                dialect.auth(&keys.caller),
                404,
                "does not exist",
            );
            let case = corpus.cases.last_mut().expect("just pushed");
            (case.method, case.path, case.body) = ("GET", format!("/v1/models/{name}"), vec![]);
        }
        corpus.auth("path_not_utf8", dialect.auth(&keys.caller), 400, "utf-8");
        let case = corpus.cases.last_mut().expect("just pushed");
        (case.method, case.path, case.body) = ("GET", "/v1/models/%FF%FE".to_owned(), vec![]);
        corpus.auth("wrong_method", dialect.auth(&keys.caller), 405, "method");
        corpus.cases.last_mut().expect("just pushed").path = "/v1/models".to_owned();
    }
    corpus.cases
}

/// Requests to the admin and audit routes with a key of the wrong role, or no key.
fn route_cases(keys: &Keys) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut push = |method, path: &str, token: Option<&str>, body: Value, status, word| {
        let mut headers: Headers = vec![("content-type", b"application/json".to_vec())];
        if let Some(token) = token {
            headers.push(("authorization", format!("Bearer {token}").into_bytes()));
        }
        let body = if method == "GET" {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        cases.push(Case {
            class: "wrong_role_route",
            method,
            path: path.to_owned(),
            headers,
            body,
            status,
            word,
            shape: Shape::Gateway,
        });
    };
    let checkpoint = json!({"provider": "openai", "snapshot": "gpt-4o-2024-08-06"});
    let alias = json!({"name": "sneaky", "deployment": "openai-chat"});
    let rotation = json!({"to": "openai-chat", "kind": "upgrade", "reason": "x"});
    let admin_routes = [
        ("GET", "/admin/v1/aliases", Value::Null),
        ("GET", "/admin/v1/checkpoints", Value::Null),
        ("GET", "/admin/v1/deployments", Value::Null),
        ("POST", "/admin/v1/checkpoints", checkpoint),
        ("POST", "/admin/v1/aliases", alias),
        ("POST", "/admin/v1/aliases/openai-chat/rotate", rotation),
        (
            "POST",
            "/admin/v1/aliases/openai-chat/rollback",
            json!({"reason": "x"}),
        ),
    ];
    let audit_routes = [
        "/audit/v1/inferences",
        "/audit/v1/decisions/case-2026-0412",
        "/audit/v1/aliases/openai-chat",
        "/audit/v1/export?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
        "/audit/search?q=case",
    ];
    for (method, path, body) in &admin_routes {
        for token in [&keys.caller, &keys.auditor] {
            push(*method, path, Some(token), body.clone(), 403, "role");
        }
        push(
            *method,
            path,
            Some(&keys.revoked_admin),
            body.clone(),
            401,
            "revoked",
        );
        push(*method, path, None, body.clone(), 401, "authorization");
    }
    for path in audit_routes {
        for token in [&keys.caller, &keys.admin] {
            push("GET", path, Some(token), Value::Null, 403, "role");
        }
        push(
            "GET",
            path,
            Some(&keys.revoked_caller),
            Value::Null,
            401,
            "revoked",
        );
    }
    // The admin key on its own routes, with a body that is not JSON or not declared as JSON.
    let admin = format!("Bearer {}", keys.admin).into_bytes();
    let bodies: [(&[u8], &[u8], u16, &str); 4] = [
        (b"text/plain", br#"{"name":"sneaky"}"#, 415, "content-type"),
        (
            b"application/x-www-form-urlencoded",
            b"name=sneaky",
            415,
            "content-type",
        ),
        (b"application/json", br#"{"name":"sneaky","#, 400, "json"),
        (b"application/json", b"\xff\xfe", 400, "json"),
    ];
    for (content_type, body, status, word) in bodies {
        cases.push(Case {
            class: "admin_body",
            method: "POST",
            path: "/admin/v1/aliases".to_owned(),
            headers: vec![
                ("authorization", admin.clone()),
                ("content-type", content_type.to_vec()),
            ],
            body: body.to_vec(),
            status,
            word,
            shape: Shape::Gateway,
        });
    }
    cases
}

/// The corpus, as run against one gateway.
fn all_cases(keys: &Keys) -> Vec<Case> {
    let mut cases = dialect_cases(OPENAI, keys);
    cases.extend(dialect_cases(ANTHROPIC, keys));
    cases.extend(route_cases(keys));
    cases
}

fn request(case: &Case) -> Request<Body> {
    let mut request = Request::builder().method(case.method).uri(&case.path);
    for (name, value) in &case.headers {
        let value = HeaderValue::from_bytes(value).expect("a value a header can carry");
        request = request.header(*name, value);
    }
    request
        .body(Body::from(case.body.clone()))
        .expect("request")
}

/// What is wrong with an answer to `case`, if anything.
fn judge(case: &Case, status: u16, content_type: &str, body: &[u8]) -> Option<String> {
    if status != case.status {
        return Some(format!("status {status}, expected {}", case.status));
    }
    if !content_type.starts_with("application/json") {
        return Some(format!("content-type `{content_type}`"));
    }
    let Ok(error) = serde_json::from_slice::<Value>(body) else {
        return Some("body is not JSON".to_owned());
    };
    let detail = &error["error"];
    let message = detail["message"].as_str().unwrap_or("");
    let kind = detail["type"].as_str().unwrap_or("");
    let shaped = !message.is_empty()
        && !kind.is_empty()
        && match case.shape {
            Shape::OpenAi => error.get("type").is_none() && detail.get("code").is_some(),
            Shape::Anthropic => error["type"] == "error",
            Shape::Gateway => error.get("type").is_none(),
        };
    if !shaped {
        return Some(format!("not in the {:?} error shape: {error}", case.shape));
    }
    if !message.to_lowercase().contains(case.word) {
        return Some(format!("message `{message}` does not say `{}`", case.word));
    }
    None
}

fn header_text(value: Option<&HeaderValue>) -> String {
    value
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A caller key, created and then revoked before the gateway serves.
fn revoked_caller(bench: &StandInBench) -> String {
    let token = ascribe_access::new_token().expect("token");
    bench.gateway.append_as_setup(vec![
        ascribe_access::create_key(
            "former-app",
            ascribe_access::Role::Caller,
            &token.token_sha256,
            "test-setup",
        ),
        ascribe_access::revoke_key("former-app", "test-setup"),
    ]);
    token.token
}

fn bad_input_is_refused_and_not_recorded(store: Store) {
    let started = std::time::Instant::now();
    let config = GatewayConfig {
        max_request_body: BODY_LIMIT,
        ..GatewayConfig::default()
    };
    let scenarios = [
        (
            "openai-chat",
            "openai-compatible",
            Some("gpt-4o-2024-08-06"),
        ),
        (
            "openai-embeddings",
            "openai-compatible",
            Some("text-embedding-3-small"),
        ),
        (
            "anthropic-messages",
            "anthropic",
            Some("claude-sonnet-4-5-20250929"),
        ),
    ];
    let bench = StandInBench::start(store, config, &scenarios);
    let gateway = &bench.gateway;
    let keys = Keys {
        caller: gateway.caller.clone(),
        admin: gateway.admin.clone(),
        auditor: gateway.auditor.clone(),
        revoked_admin: gateway.revoked.clone(),
        revoked_caller: revoked_caller(&bench),
    };

    let cases = all_cases(&keys);
    let entries_before = gateway.entries().len();
    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut accepted_bad, mut server_errors) = (0, 0);
    let mut failures = Vec::new();
    for (number, case) in cases.iter().enumerate() {
        *by_class.entry(case.class).or_default() += 1;
        let upstream_calls = bench.upstream.received().len();
        let (status, headers, body) = gateway.send_raw(request(case));
        let status = status.as_u16();
        accepted_bad += usize::from(status < 400);
        server_errors += usize::from(status >= 500);
        let content_type = header_text(headers.get("content-type"));
        let mut wrong = judge(case, status, &content_type, &body);
        if bench.upstream.received().len() != upstream_calls {
            wrong = Some("it reached the upstream".to_owned());
        }
        if headers.contains_key("ascribe-inference-id") {
            wrong = Some("it names an inference".to_owned());
        }
        if let Some(wrong) = wrong {
            let shown: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            let sent: String = String::from_utf8_lossy(&case.body)
                .chars()
                .take(120)
                .collect();
            failures.push(format!(
                "#{number} {} {} {} [{sent}]: {wrong}; answer: {shown}",
                case.class, case.method, case.path
            ));
        }
    }
    let recorded = gateway.entries().len() - entries_before;

    eprintln!(
        "reliability: test=bad_input store={} inputs={} classes={} accepted_bad={accepted_bad} \
         server_errors={server_errors} wrong_answers={} recorded={recorded} seconds={:.1}",
        store_name(store),
        cases.len(),
        by_class.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(cases.len() >= 500, "the corpus has {} inputs", cases.len());
    assert_eq!(
        accepted_bad,
        0,
        "bad inputs were accepted:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        server_errors,
        0,
        "bad inputs got a 5xx:\n{}",
        failures.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {} answers were wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(recorded, 0, "bad inputs were recorded in the ledger");

    // The gateway still serves, on both dialects, and records what it serves.
    for dialect in [OPENAI, ANTHROPIC] {
        let mut headers = dialect.auth(&keys.caller);
        headers.push(("content-type", b"application/json".to_vec()));
        headers.push(("ascribe-decision", b"x".repeat(MAX_DECISION)));
        let good = Case {
            class: "good",
            method: "POST",
            path: dialect.path.to_owned(),
            headers,
            body: dialect.good_body().to_string().into_bytes(),
            status: 200,
            word: "",
            shape: dialect.shape,
        };
        let (status, headers, body) = gateway.send_raw(request(&good));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let id = header_text(headers.get("ascribe-inference-id"));
        let record = gateway
            .entries()
            .into_iter()
            .find(|entry| entry["body"]["inference_id"] == id.as_str())
            .expect("the good call is recorded");
        assert_eq!(record["body"]["decision"], "x".repeat(MAX_DECISION));
    }
}
on_both_stores!(bad_input_is_refused_and_not_recorded);

/// Fields only the provider reads are forwarded as the caller wrote them, and the call is
/// recorded like any other that reached an upstream: the provider is the judge of them.
fn fields_the_gateway_does_not_read_are_the_providers_to_judge(store: Store) {
    let scenarios = [(
        "openai-chat",
        "openai-compatible",
        Some("gpt-4o-2024-08-06"),
    )];
    let bench = StandInBench::start(store, GatewayConfig::default(), &scenarios);
    let gateway = &bench.gateway;
    let bodies = [
        json!({"model": "openai-chat", "messages": "hi"}),
        json!({"model": "openai-chat", "messages": [{"role": 7}], "max_tokens": "many"}),
        json!({"model": "openai-chat", "temperature": "hot", "n": -1}),
    ];
    for body in bodies {
        let bytes = body.to_string();
        let request = Request::builder()
            .method("POST")
            .uri("/v1/chat/completions")
            .header("authorization", format!("Bearer {}", gateway.caller))
            .header("content-type", "application/json")
            .body(Body::from(bytes.clone()))
            .expect("request");
        let calls = bench.upstream.received().len();
        let (status, headers, _) = gateway.send_raw(request);
        assert_eq!(status, 200, "the stand-in answers whatever it is sent");
        assert_eq!(bench.upstream.received().len(), calls + 1, "forwarded");
        let id = header_text(headers.get("ascribe-inference-id"));
        let record = gateway
            .entries()
            .into_iter()
            .find(|entry| entry["body"]["inference_id"] == id.as_str())
            .expect("recorded");
        assert_eq!(
            record["body"]["request_sha256"],
            hex::encode(Sha256::digest(bytes.as_bytes())),
            "the record holds the digest of the request as the caller sent it"
        );
    }
}
on_both_stores!(fields_the_gateway_does_not_read_are_the_providers_to_judge);

/// CR, LF, NUL and DEL cannot be put in a header value, so a decision reference carrying
/// them can only come in the body (covered by the corpus); the HTTP layer refuses to build
/// or parse such a header before the gateway sees it.
#[test]
fn forbidden_header_bytes_never_reach_the_gateway() {
    let values: [&[u8]; 6] = [
        b"case\r\nX-Evil: 1",
        b"case\n1",
        b"case\r1",
        b"case\x001",
        b"case\x7f",
        b"\x1b[31m",
    ];
    for value in values {
        assert!(
            HeaderValue::from_bytes(value).is_err(),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
}

fn store_name(store: Store) -> &'static str {
    match store {
        Store::Sqlite => "sqlite",
        Store::Postgres => "postgres",
    }
}
