//! `ascribe serve` operated as a platform team runs it: a real process, real HTTP, a stand-in
//! upstream. These tests prove that
//!
//! - every inference becomes exactly one OpenTelemetry span at an OTLP/HTTP receiver, with the
//!   GenAI attributes, the ledger's ids and the caller's W3C trace context, and that this
//!   trace context also reaches the upstream;
//! - SIGTERM under concurrent load loses no record: every answer a caller received is in the
//!   ledger, every stream read to its end has its completion, the ledger verifies and the
//!   process exits 0;
//! - `--log-format json` writes one line per recorded inference and never a key or a body;
//! - the configuration is checked before serving (`serve --check-config`, unknown keys, bad
//!   variables), and a running server honours its configuration file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ascribe_gateway::testing::StandInUpstream;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span};
use prost::Message as _;
use reqwest::blocking::Client;
use serde_json::Value;

mod common;

use common::{Ascribe, Scenario, Server, CHAT, CLAUDE, PACED};

/// The variable the Anthropic deployment reads its provider key from, and that key.
const PROVIDER_KEY_VARIABLE: &str = "OPERABILITY_TEST_ANTHROPIC_API_KEY";
const PROVIDER_KEY: &str = "sk-ant-provider-SECRET-91d4c7e0";

/// The caller's W3C trace context on the traced call.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// Served models in the stand-in's fixtures.
const CHAT_SERVED: &str = "gpt-4o-2024-08-06";
const CHAT_STREAM_SERVED: &str = "gpt-4o-mini-2024-07-18";
const CLAUDE_SERVED: &str = "claude-sonnet-4-5-20250929";

const SCENARIOS: &[Scenario] = &[
    CHAT,
    CLAUDE,
    Scenario {
        alias: "limited-v1",
        upstream_model: "openai-rate-limited",
        dialect: "openai-compatible",
        expect_served: CHAT_SERVED,
    },
    PACED,
];

/// The checkpoint id registered for a scenario.
fn checkpoint_of(alias: &str) -> String {
    let scenario = SCENARIOS
        .iter()
        .find(|scenario| scenario.alias == alias)
        .expect("a known alias");
    format!("standin:{}", scenario.upstream_model)
}

/// A ledger in a temporary home with a caller key and the [`SCENARIOS`] on a stand-in.
struct Setup {
    home: tempfile::TempDir,
    upstream: StandInUpstream,
    /// The caller key's token.
    token: String,
}

impl Setup {
    fn new() -> Setup {
        let home = tempfile::tempdir().expect("tempdir");
        let upstream = StandInUpstream::start().expect("stand-in starts");
        let ascribe = ascribe_in(home.path());
        let token =
            ascribe.init_with_scenarios(&upstream.base_url(), SCENARIOS, PROVIDER_KEY_VARIABLE);
        Setup {
            home,
            upstream,
            token,
        }
    }

    fn ascribe(&self) -> Ascribe<'_> {
        ascribe_in(self.home.path())
    }
}

fn ascribe_in(home: &Path) -> Ascribe<'_> {
    Ascribe {
        home,
        db: "sqlite://ledger.db".to_owned(),
    }
}

fn client() -> Client {
    common::load::client(Duration::from_secs(15))
}

/// What a caller got back.
#[derive(Clone, Debug)]
struct Answer {
    alias: &'static str,
    stream: bool,
    status: u16,
    inference_id: Option<String>,
    checkpoint: Option<String>,
    body: String,
    /// The body was read to its end without error (for a stream: up to its last event).
    whole: bool,
}

impl Answer {
    fn id(&self) -> &str {
        self.inference_id
            .as_deref()
            .expect("an Ascribe-Inference-Id")
    }
}

/// One call with a prompt: Anthropic's Messages API for the `claude` alias, else chat
/// completions; `headers` are added to the request.
fn infer(
    client: &Client,
    base: &str,
    token: &str,
    alias: &'static str,
    stream: bool,
    prompt: &str,
    headers: &[(&str, &str)],
) -> reqwest::Result<Answer> {
    let reply = common::load::infer(client, base, token, alias, stream, prompt, headers)?;
    Ok(Answer {
        alias,
        stream,
        status: reply.status,
        inference_id: reply.header("ascribe-inference-id"),
        checkpoint: reply.header("ascribe-checkpoint"),
        body: reply.body,
        whole: reply.whole,
    })
}

/// `infer` that must get an answer.
fn call(setup: &Setup, server: &Server, alias: &'static str, stream: bool) -> Answer {
    let answer = infer(
        &client(),
        &server.base,
        &setup.token,
        alias,
        stream,
        "hi",
        &[],
    )
    .expect("answered");
    assert!(
        answer.whole,
        "{alias} stream={stream}: body cut: {answer:?}"
    );
    answer
}

// ---------------------------------------------------------------------------------------
// OpenTelemetry
// ---------------------------------------------------------------------------------------

/// An OTLP/HTTP receiver: it decodes every `POST /v1/traces` as an
/// `ExportTraceServiceRequest` and answers an empty `ExportTraceServiceResponse`.
struct OtlpReceiver {
    address: SocketAddr,
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl OtlpReceiver {
    fn start() -> OtlpReceiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("receiver binds");
        let address = listener.local_addr().expect("address");
        let exports = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&exports);
        let export = move |headers: HeaderMap, body: Bytes| {
            let kept = Arc::clone(&kept);
            async move { receive(&kept, &headers, &body) }
        };
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(export));
        runtime.spawn(async move { axum::serve(listener, app).await });
        OtlpReceiver {
            address,
            exports,
            _runtime: runtime,
        }
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every span received, with its resource's `service.name` and its scope's name.
    fn spans(&self) -> Vec<(String, String, Span)> {
        let exports = self.exports.lock().expect("exports");
        let mut spans = Vec::new();
        for resource_spans in exports.iter().flat_map(|export| &export.resource_spans) {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| text_in(&resource.attributes, "service.name"))
                .unwrap_or_default()
                .to_owned();
            for scope_spans in &resource_spans.scope_spans {
                let scope = scope_spans
                    .scope
                    .as_ref()
                    .map(|scope| scope.name.clone())
                    .unwrap_or_default();
                for span in &scope_spans.spans {
                    spans.push((service.clone(), scope.clone(), span.clone()));
                }
            }
        }
        spans
    }
}

fn receive(
    exports: &Mutex<Vec<ExportTraceServiceRequest>>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok());
    if content_type != Some("application/x-protobuf") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    exports.lock().expect("exports").push(request);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        answer,
    )
        .into_response()
}

type Attributes = [opentelemetry_proto::tonic::common::v1::KeyValue];

fn value_in<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn text_in<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a str> {
    match value_in(attributes, key) {
        Some(any_value::Value::StringValue(text)) => Some(text),
        _ => None,
    }
}

fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    text_in(&span.attributes, key)
}

fn integer(span: &Span, key: &str) -> Option<i64> {
    match value_in(&span.attributes, key) {
        Some(any_value::Value::IntValue(value)) => Some(*value),
        _ => None,
    }
}

/// The strings of an array attribute.
fn strings<'a>(span: &'a Span, key: &str) -> Option<Vec<&'a str>> {
    let Some(any_value::Value::ArrayValue(array)) = value_in(&span.attributes, key) else {
        return None;
    };
    let texts = array.values.iter().map(|value| match &value.value {
        Some(any_value::Value::StringValue(text)) => Some(text.as_str()),
        _ => None,
    });
    texts.collect()
}

/// The span's status code, `Unset` when it has none.
fn status_of(span: &Span) -> status::StatusCode {
    span.status
        .as_ref()
        .map(|status| status.code())
        .unwrap_or(status::StatusCode::Unset)
}

/// What the span of one call must say, beyond the ids.
struct Expected {
    provider: &'static str,
    served: Option<&'static str>,
    /// Input and output tokens, from the fixture's usage.
    tokens: Option<(i64, i64)>,
    /// `error.type` of a failed call.
    error: Option<&'static str>,
    /// `ascribe.identity_match` as recorded.
    identity: &'static str,
    /// A stream's last finish reason.
    finish: Option<&'static str>,
}

fn expected(answer: &Answer) -> Expected {
    let ok = |provider, served, tokens, finish: &'static str| Expected {
        provider,
        served: Some(served),
        tokens: Some(tokens),
        error: None,
        identity: "match",
        finish: answer.stream.then_some(finish),
    };
    match (answer.alias, answer.stream) {
        ("chat-v1", false) => ok("openai", CHAT_SERVED, (24, 8), ""),
        ("chat-v1", true) => ok("openai", CHAT_STREAM_SERVED, (53, 15), "stop"),
        ("claude-v1", false) => ok("anthropic", CLAUDE_SERVED, (20, 10), ""),
        ("claude-v1", true) => ok("anthropic", CLAUDE_SERVED, (20, 5), "end_turn"),
        ("limited-v1", _) => Expected {
            provider: "openai",
            served: None,
            tokens: None,
            error: Some("429"),
            identity: "none",
            finish: None,
        },
        other => panic!("no expectation for {other:?}"),
    }
}

/// Checks the one span of `answer` against what the call was and what the ledger recorded.
fn check_span(span: &Span, answer: &Answer, upstream_port: i64) {
    let what = format!("span of {} (stream: {})", answer.alias, answer.stream);
    let expected = expected(answer);
    assert_eq!(span.kind(), span::SpanKind::Client, "{what}");
    assert_eq!(span.name, format!("chat {}", answer.alias), "{what}");
    assert_eq!(text(span, "gen_ai.operation.name"), Some("chat"), "{what}");
    assert_eq!(
        text(span, "gen_ai.request.model"),
        Some(answer.alias),
        "{what}"
    );
    assert_eq!(
        text(span, "gen_ai.response.model"),
        expected.served,
        "{what}"
    );
    assert_eq!(
        text(span, "gen_ai.provider.name"),
        Some(expected.provider),
        "{what}"
    );
    let checkpoint = checkpoint_of(answer.alias);
    assert_eq!(text(span, "ascribe.checkpoint"), Some(checkpoint.as_str()));
    assert_eq!(answer.checkpoint.as_deref(), Some(checkpoint.as_str()));
    assert_eq!(text(span, "ascribe.alias"), Some(answer.alias), "{what}");
    let deployment = checkpoint.strip_prefix("standin:");
    assert_eq!(text(span, "ascribe.deployment"), deployment, "{what}");
    assert_eq!(
        text(span, "ascribe.identity_match"),
        Some(expected.identity),
        "{what}"
    );
    assert_eq!(text(span, "server.address"), Some("127.0.0.1"), "{what}");
    assert_eq!(integer(span, "server.port"), Some(upstream_port), "{what}");
    let finish = strings(span, "gen_ai.response.finish_reasons");
    assert_eq!(finish, expected.finish.map(|reason| vec![reason]), "{what}");
    let tokens =
        integer(span, "gen_ai.usage.input_tokens").zip(integer(span, "gen_ai.usage.output_tokens"));
    assert_eq!(tokens, expected.tokens, "{what}");
    match expected.error {
        Some(error) => {
            assert_eq!(status_of(span), status::StatusCode::Error, "{what}");
            assert_eq!(text(span, "error.type"), Some(error), "{what}");
        }
        None => {
            assert_ne!(status_of(span), status::StatusCode::Error, "{what}");
            assert_eq!(text(span, "error.type"), None, "{what}");
        }
    }
}

#[test]
fn one_span_per_inference_reaches_an_otlp_receiver() {
    let receiver = OtlpReceiver::start();
    let setup = Setup::new();
    let endpoint = receiver.endpoint();
    let env = [
        ("ASCRIBE_TELEMETRY_OTLP_TRACES", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        (PROVIDER_KEY_VARIABLE, PROVIDER_KEY),
    ];
    let mut server = Server::start(&setup.ascribe(), &[], &env);

    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let traced = infer(
        &client(),
        &server.base,
        &setup.token,
        "chat-v1",
        false,
        "hi",
        &[("traceparent", &traceparent)],
    )
    .expect("answered");
    let mut answers = vec![traced.clone()];
    answers.push(call(&setup, &server, "chat-v1", true));
    answers.push(call(&setup, &server, "claude-v1", false));
    answers.push(call(&setup, &server, "claude-v1", true));
    answers.push(call(&setup, &server, "limited-v1", false));
    for answer in &answers {
        let expected_status = if answer.alias == "limited-v1" {
            429
        } else {
            200
        };
        assert_eq!(answer.status, expected_status, "{answer:?}");
        assert!(answer.inference_id.is_some(), "{answer:?}");
    }

    // Spans are exported in batches; stopping the server flushes the last one.
    let status = server.terminate();
    assert!(status.success(), "exit {status}: {}", server.log());

    let spans = receiver.spans();
    assert_eq!(
        spans.len(),
        answers.len(),
        "one span per inference, no other"
    );
    for (service, scope, _) in &spans {
        assert_eq!(
            (service.as_str(), scope.as_str()),
            ("ascribe", "ascribe-gateway")
        );
    }
    let received = setup.upstream.received();
    let upstream_port = setup
        .upstream
        .base_url()
        .trim_end_matches("/v1")
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the stand-in's port");
    for answer in &answers {
        let mine: Vec<&Span> = spans
            .iter()
            .map(|(_, _, span)| span)
            .filter(|span| text(span, "ascribe.inference_id") == Some(answer.id()))
            .collect();
        assert_eq!(mine.len(), 1, "spans of {answer:?}");
        let span = mine[0];
        check_span(span, answer, upstream_port);
        // The upstream was called once in this span's context.
        let context = format!(
            "00-{}-{}-01",
            hex::encode(&span.trace_id),
            hex::encode(&span.span_id)
        );
        let upstream_calls = received
            .iter()
            .filter(|request| request.header("traceparent") == Some(context.as_str()))
            .count();
        assert_eq!(
            upstream_calls, 1,
            "upstream calls with traceparent {context}"
        );
    }

    // The caller's trace continues through the gateway's span to the upstream.
    let (_, _, span) = spans
        .iter()
        .find(|(_, _, span)| text(span, "ascribe.inference_id") == Some(traced.id()))
        .expect("the traced call's span");
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT_SPAN_ID);
    let continued = received
        .iter()
        .filter_map(|request| request.header("traceparent"))
        .filter(|sent| sent.starts_with(&format!("00-{TRACE_ID}-")))
        .count();
    assert_eq!(continued, 1, "one upstream call in the caller's trace");
    // Untraced calls start traces of their own.
    for (_, _, other) in spans.iter().filter(|(_, _, other)| other != span) {
        assert_ne!(hex::encode(&other.trace_id), TRACE_ID);
        assert!(other.parent_span_id.is_empty(), "a root span");
    }
    // The provider key went upstream, to the Anthropic deployment only.
    for request in &received {
        let sent_key = request.header("x-api-key");
        match request.path.as_str() {
            "/v1/messages" => assert_eq!(sent_key, Some(PROVIDER_KEY)),
            _ => assert_eq!(sent_key, None, "{request:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// SIGTERM under load
// ---------------------------------------------------------------------------------------

/// Caller threads.
const CALLERS: usize = 8;

/// One call of the load, with when it ran relative to SIGTERM.
struct Attempt {
    answer: Option<Answer>,
    /// Started before SIGTERM was sent.
    before: bool,
    /// Still running when SIGTERM was sent.
    in_flight_at_sigterm: bool,
}

/// What the callers share.
#[derive(Default)]
struct Load {
    attempts: Mutex<Vec<Attempt>>,
    in_flight: AtomicUsize,
    /// Set just before SIGTERM is sent.
    sigterm: AtomicBool,
    /// Set once the server exited.
    stop: AtomicBool,
}

/// Calls `paced-v1` in a loop, streams and whole answers in turn, until the load stops or,
/// after SIGTERM, a call fails (the server no longer accepts).
fn caller(load: &Load, base: &str, token: &str, first: usize) {
    let client = client();
    for n in first.. {
        if load.stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = n % 2 == 0;
        let before = !load.sigterm.load(Ordering::SeqCst);
        load.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = infer(&client, base, token, "paced-v1", stream, "hi", &[]).ok();
        load.in_flight.fetch_sub(1, Ordering::SeqCst);
        let in_flight_at_sigterm = before && load.sigterm.load(Ordering::SeqCst);
        let failed = answer.is_none();
        load.attempts.lock().expect("attempts").push(Attempt {
            answer,
            before,
            in_flight_at_sigterm,
        });
        if failed && load.sigterm.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// The `inference.recorded` and `inference.completed` bodies in the ledger, by inference id.
fn ledger_inferences(home: &Path) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let connection = rusqlite::Connection::open(home.join("ledger.db")).expect("opens");
    let mut statement = connection
        .prepare("SELECT kind, entry FROM ledger_entries ORDER BY seq")
        .expect("sql");
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .expect("rows");
    let (mut recorded, mut completed) = (BTreeMap::new(), BTreeMap::new());
    for row in rows {
        let (kind, entry) = row.expect("row");
        let entry: Value = serde_json::from_str(&entry).expect("entry JSON");
        let body = entry["body"].clone();
        let id = body["inference_id"].as_str().unwrap_or_default().to_owned();
        let into = match kind.as_str() {
            "inference.recorded" => &mut recorded,
            "inference.completed" => &mut completed,
            _ => continue,
        };
        assert!(into.insert(id, body).is_none(), "one {kind} per inference");
    }
    (recorded, completed)
}

#[test]
fn sigterm_under_load_loses_no_record() {
    let setup = Setup::new();
    let env = [("ASCRIBE_SHUTDOWN_GRACE_PERIOD", "10s")];
    let mut server = Server::start(&setup.ascribe(), &[], &env);
    let load = Arc::new(Load::default());
    let callers: Vec<_> = (0..CALLERS)
        .map(|first| {
            let (load, base, token) = (Arc::clone(&load), server.base.clone(), setup.token.clone());
            std::thread::spawn(move || caller(&load, &base, &token, first))
        })
        .collect();

    // Let the load run until answers are flowing and calls are in flight, then stop it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = load.attempts.lock().expect("attempts").len();
        if done >= 3 * CALLERS && load.in_flight.load(Ordering::SeqCst) >= CALLERS / 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the load never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let in_flight_at_sigterm = load.in_flight.load(Ordering::SeqCst);
    load.sigterm.store(true, Ordering::SeqCst);
    let stopping = Instant::now();
    let status = server.terminate();
    let stopped_in = stopping.elapsed();
    load.stop.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.join().expect("caller thread");
    }
    assert!(status.success(), "exit {status}: {}", server.log());

    let attempts = std::mem::take(&mut *load.attempts.lock().expect("attempts"));
    let errors_before = attempts
        .iter()
        .filter(|attempt| attempt.before && !attempt.in_flight_at_sigterm)
        .filter(|attempt| attempt.answer.as_ref().is_none_or(|a| a.status != 200))
        .count();
    assert_eq!(errors_before, 0, "every call before SIGTERM was answered");
    let answered: Vec<&Answer> = attempts
        .iter()
        .filter_map(|attempt| attempt.answer.as_ref())
        .filter(|answer| answer.status == 200 && answer.inference_id.is_some())
        .collect();
    let drained = attempts
        .iter()
        .filter(|attempt| attempt.in_flight_at_sigterm)
        .filter(|attempt| {
            attempt
                .answer
                .as_ref()
                .is_some_and(|a| a.status == 200 && a.whole)
        })
        .count();
    let cut_streams = answered.iter().filter(|answer| !answer.whole).count();

    let (recorded, completed) = ledger_inferences(setup.home.path());
    let lost: Vec<&str> = answered
        .iter()
        .map(|answer| answer.id())
        .filter(|id| !recorded.contains_key(*id))
        .collect();
    let unfinished: Vec<&str> = answered
        .iter()
        .filter(|answer| answer.stream && answer.whole)
        .map(|answer| answer.id())
        .filter(|id| {
            completed
                .get(*id)
                .is_none_or(|body| body["completed"] != true)
        })
        .collect();
    let recorded_streams_without_completion = recorded
        .iter()
        .filter(|(id, body)| body["stream"] == true && !completed.contains_key(*id))
        .count();
    let answered_before = attempts
        .iter()
        .filter(|attempt| attempt.before && !attempt.in_flight_at_sigterm)
        .count();
    let refused_after = attempts
        .iter()
        .filter(|attempt| !attempt.before && attempt.answer.is_none())
        .count();
    println!(
        "{answered_before} answers before SIGTERM, {in_flight_at_sigterm} calls in flight at \
         SIGTERM, {drained} of them answered in full after it, {refused_after} later calls \
         refused; {} answers with an inference id in all, {cut_streams} streams cut, records \
         lost {}, streams read to the end without completion entry {}, streams recorded \
         without completion {recorded_streams_without_completion}; exit in {stopped_in:?}",
        answered.len(),
        lost.len(),
        unfinished.len(),
    );
    assert!(
        in_flight_at_sigterm > 0,
        "SIGTERM came with calls in flight"
    );
    assert!(drained > 0, "calls in flight at SIGTERM were answered");
    assert_eq!(cut_streams, 0, "no stream was cut by the shutdown");
    assert!(
        lost.is_empty(),
        "answers released without a record: {lost:?}"
    );
    assert!(
        unfinished.is_empty(),
        "streams without completion: {unfinished:?}"
    );
    assert_eq!(recorded_streams_without_completion, 0);
    for answer in &answered {
        let body = &recorded[answer.id()];
        assert_eq!(body["status"], 200, "{body}");
        assert_eq!(body["stream"], answer.stream, "{body}");
        assert_eq!(body["alias"], "paced-v1", "{body}");
    }

    // The CLI finds the last stream answered, proved against the tree head signed at exit.
    let last_stream = answered
        .iter()
        .rev()
        .find(|answer| answer.stream)
        .expect("a stream was answered");
    let audit = setup
        .ascribe()
        .ok(&["audit", "inference", last_stream.id(), "--json"]);
    assert_eq!(audit["completion"]["record"]["completed"], true, "{audit}");
    assert!(!audit["inclusion_proof"].is_null(), "{audit}");
    let report = setup.ascribe().ok(&["verify", "--json"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["tree_size"], report["entries"], "{report}");
}

// ---------------------------------------------------------------------------------------
// JSON logs
// ---------------------------------------------------------------------------------------

#[test]
fn json_logs_have_one_line_per_inference_and_no_secrets() {
    let setup = Setup::new();
    let prompt = "PROMPT-quokka-ledger-7731 please summarise the case";
    let bogus_key = "sk-caller-BOGUS-5f0e2a";
    let env = [(PROVIDER_KEY_VARIABLE, PROVIDER_KEY)];
    let mut server = Server::start(&setup.ascribe(), &["--log-format", "json"], &env);
    let client = client();
    let mut answers = Vec::new();
    for (alias, stream) in [
        ("chat-v1", false),
        ("chat-v1", true),
        ("claude-v1", false),
        ("claude-v1", true),
        ("limited-v1", false),
    ] {
        let answer = infer(
            &client,
            &server.base,
            &setup.token,
            alias,
            stream,
            prompt,
            &[],
        )
        .expect("answered");
        assert!(answer.whole && answer.inference_id.is_some(), "{answer:?}");
        answers.push(answer);
    }
    let refused = infer(
        &client,
        &server.base,
        bogus_key,
        "chat-v1",
        false,
        prompt,
        &[],
    )
    .expect("answered");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(answers
        .iter()
        .any(|answer| answer.body.contains("<assistant text>")));
    let status = server.terminate();
    assert!(status.success(), "exit {status}: {}", server.log());

    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    let recorded: Vec<&Value> = lines
        .iter()
        .map(|line| &line["fields"])
        .filter(|fields| fields["message"] == "inference recorded")
        .collect();
    assert_eq!(
        recorded.len(),
        answers.len(),
        "one line per inference: {log}"
    );
    for answer in &answers {
        let mine: Vec<&&Value> = recorded
            .iter()
            .filter(|fields| fields["inference_id"] == answer.id())
            .collect();
        assert_eq!(mine.len(), 1, "lines of {answer:?}");
        let fields = mine[0];
        assert_eq!(fields["alias"], answer.alias, "{fields}");
        assert_eq!(
            fields["checkpoint"],
            checkpoint_of(answer.alias),
            "{fields}"
        );
        assert_eq!(fields["status"], answer.status, "{fields}");
    }

    let secrets = [
        ("the caller key", setup.token.as_str()),
        ("a refused caller key", bogus_key),
        ("the provider key", PROVIDER_KEY),
        ("the request body", "PROMPT-quokka"),
        ("the chat answer", "<assistant text>"),
        ("the streamed answer", "<text>"),
        ("the upstream's error body", "Rate limit reached"),
    ];
    for line in log.lines() {
        for (what, secret) in secrets {
            assert!(!line.contains(secret), "{what} is in a log line: {line}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// Runs `ascribe` with `args` and `env` added; returns its output.
/// Runs `ascribe` with `args` and `env` added, and returns its output; a command that is
/// still running after a few seconds (a `serve` that should have refused to start) is killed
/// and fails the test.
fn run(ascribe: &Ascribe<'_>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = ascribe
        .command(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ascribe runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "ascribe {args:?} still running: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// The `--check-config` table: field, value and source of every line that names a field.
fn settings(stdout: &str) -> BTreeMap<String, (String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [field, value, source] if FIELDS.contains(field) => {
                    Some((field.to_string(), (value.to_string(), source.to_string())))
                }
                _ => None,
            }
        })
        .collect()
}

/// Every configuration field, as docs/configuration.md lists them.
const FIELDS: &[&str] = &[
    "home",
    "db",
    "listen",
    "log.level",
    "log.format",
    "upstream.connect_timeout",
    "upstream.timeout",
    "upstream.deadline",
    "upstream.max_response_bytes",
    "limits.max_request_bytes",
    "limits.max_concurrent_reads",
    "probe.interval",
    "ledger.tree_head_interval",
    "ledger.max_batch",
    "ledger.lock_timeout",
    "metrics.enabled",
    "telemetry.otlp_traces",
    "shutdown.grace_period",
];

/// Asserts that a command was refused as unable to run (exit 2) with every one of `needles`
/// in its error.
fn assert_refused(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    }
}

#[test]
fn configuration_is_checked_before_serving() {
    let setup = Setup::new();
    let ascribe = setup.ascribe();
    let home = setup.home.path();

    // A fresh home: every field with where it came from.
    let env = [("ASCRIBE_UPSTREAM_TIMEOUT", "5s")];
    let output = run(&ascribe, &["serve", "--check-config"], &env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(&format!(
        "configuration file  {}",
        home.join("ascribe.toml").display()
    )));
    assert!(stdout.contains("ready to serve"), "{stdout}");
    let shown = settings(&stdout);
    let listed: BTreeSet<&str> = shown.keys().map(String::as_str).collect();
    assert_eq!(listed, FIELDS.iter().copied().collect(), "{stdout}");
    let source = |field: &str| shown[field].1.as_str();
    assert_eq!(shown["upstream.timeout"].0, "\"5s\"", "{stdout}");
    assert_eq!(source("upstream.timeout"), "ASCRIBE_UPSTREAM_TIMEOUT");
    assert_eq!(source("home"), "ASCRIBE_HOME");
    assert_eq!(source("listen"), "default");
    assert_eq!(shown["limits.max_request_bytes"].0, "16777216");

    // An unknown key is refused with its line, before anything is served.
    let misspelt = home.join("misspelt.toml");
    std::fs::write(
        &misspelt,
        "listen = \"127.0.0.1:0\"\n\n[upstream]\ntimout = \"5s\"\n",
    )
    .expect("written");
    let misspelt_text = misspelt.to_str().expect("utf-8 path");
    for args in [
        &["serve", "--check-config", "--config", misspelt_text][..],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            misspelt_text,
        ],
    ] {
        let output = run(&ascribe, args, &[]);
        assert_refused(&output, &[misspelt_text, "line 4", "timout"]);
    }

    // A bad value in a variable names the variable.
    let env = [("ASCRIBE_UPSTREAM_TIMEOUT", "soon")];
    for args in [
        &["serve", "--check-config"][..],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let output = run(&ascribe, args, &env);
        assert_refused(&output, &["ASCRIBE_UPSTREAM_TIMEOUT", "soon"]);
    }

    // Settings from a file are shown as such and honoured by the running server.
    let file = home.join("small.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\n\n[limits]\nmax_request_bytes = 1000\n",
    )
    .expect("written");
    let file_text = file.to_str().expect("utf-8 path");
    let output = run(
        &ascribe,
        &["--config", file_text, "serve", "--check-config"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let shown = settings(&stdout);
    assert_eq!(shown["listen"], ("\"127.0.0.1:0\"".into(), "file".into()));
    assert_eq!(
        shown["limits.max_request_bytes"],
        ("1000".into(), "file".into())
    );

    // No `--listen`: the address comes from the configuration file.
    let mut server = Server::spawn(&ascribe, &["--config", file_text, "serve"], &[]);
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    assert!(
        !server.base.ends_with(":8080"),
        "port 0 from the file: {}",
        server.base
    );
    let client = client();
    let small = infer(
        &client,
        &server.base,
        &setup.token,
        "chat-v1",
        false,
        "hi",
        &[],
    )
    .expect("answered");
    assert_eq!(small.status, 200, "{small:?}");
    let large = infer(
        &client,
        &server.base,
        &setup.token,
        "chat-v1",
        false,
        &"x".repeat(2000),
        &[],
    )
    .expect("answered");
    assert_eq!(large.status, 413, "{large:?}");
    assert!(large.inference_id.is_none(), "nothing was recorded for it");
    let status = server.terminate();
    assert!(status.success(), "exit {status}");
}

/// A collector that cannot be reached loses spans, and says so: a warning in the log and
/// `ascribe_otlp_spans_dropped_total` on `/metrics`, while the calls themselves succeed.
#[test]
fn spans_a_collector_cannot_take_are_reported() {
    // A port that was free a moment ago: nothing listens on it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let setup = Setup::new();
    let env = [
        ("ASCRIBE_TELEMETRY_OTLP_TRACES", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut server = Server::start(&setup.ascribe(), &[], &env);
    let answer = call(&setup, &server, "chat-v1", false);
    assert_eq!(answer.status, 200, "{answer:?}");

    let metrics_url = format!("{}/metrics", server.base);
    let dropped = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let text = client().get(&metrics_url).send().ok()?.text().ok()?;
        let line = text
            .lines()
            .find(|line| line.starts_with("ascribe_otlp_spans_dropped_total "))?;
        let count: u64 = line.rsplit(' ').next()?.parse().ok()?;
        (count > 0).then_some(count)
    });
    assert_eq!(
        dropped,
        Some(1),
        "one span, counted once it could not be sent"
    );

    let status = server.terminate();
    assert!(status.success(), "exit {status}");
    assert!(
        server
            .log()
            .contains("spans could not be exported over OTLP"),
        "{}",
        server.log()
    );
}
