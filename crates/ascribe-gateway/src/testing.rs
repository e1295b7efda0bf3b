//! A stand-in upstream for tests: it replays the response shapes real providers send (the
//! fixtures of `ascribe-dialects`), chosen by the upstream model name the gateway asks for.
//! Compiled only with the `testing` feature; it is never the only test of the gateway.
//!
//! | upstream model | answer |
//! | --- | --- |
//! | `openai-chat` | OpenAI chat completion, or its SSE stream when `stream` is true |
//! | `openai-chat-cut` | the first half of the chat stream, then the connection is reset |
//! | `openai-responses` | a Responses answer, or its stream |
//! | `openai-embeddings` | an embeddings list |
//! | `anthropic-messages` | an Anthropic message, or its stream |
//! | `anthropic-overloaded` | Anthropic's 529 `overloaded_error` |
//! | `openai-rate-limited` | OpenAI's 429 with `retry-after` |
//! | `garbage` | a 200 whose body is not JSON |
//! | `echo` | a chat completion whose `model` is the name it was sent, as llama.cpp servers do |
//! | `slow` | headers only after [`SLOW_FIRST_BYTE`] |
//! | `paced` | the chat answer after [`PACED_FIRST_BYTE`]; its stream, [`PACED_EVENT_GAP`] apart |
//! | `openai-server-error` | OpenAI's 500 `server_error` |
//! | `openai-unavailable` | OpenAI's 503 "engine is currently overloaded" |
//! | `unavailable-html` | a 503 whose body is a load balancer's HTML page |
//! | `hang` | nothing at all for [`HANG`]: no headers |
//! | `stall` | headers and half the chat answer, then nothing for [`HANG`] |
//! | `trickle` | headers, then the chat answer one byte at a time, [`TRICKLE_GAP`] apart |
//! | `slow-loris` | headers, then the chat answer (or stream) a byte every [`SLOW_LORIS_GAP`] |
//! | `stall-stream` | the first events of the chat stream, then nothing for [`HANG`] |
//! | `cut-early` | a stream's headers and a comment, then a reset before any event |
//! | `huge` | a 200 chat answer of [`HUGE_BODY`] bytes, whatever `stream` says |
//! | `huge-stream` | [`HUGE_BODY`] bytes of SSE comment lines, then the chat stream |
//! | anything else | 404 in OpenAI's shape |
//!
//! `GET /v1/models` lists the ids given to [`StandInUpstream::set_models`] (`standin` at
//! first), so a test can change what a deployment reports about itself.
//!
//! The last [`REMEMBERED`] requests are kept with their headers ([`StandInUpstream::received`]),
//! so a test can check what the gateway sent upstream: credentials, `traceparent`.
//!
//! [`StandInUpstream::stop_accepting`] closes its idle connections but keeps those whose
//! answer has not ended, and [`StandInUpstream::start_at`] starts a successor on the same
//! port: together they let a test count what a gateway holds open with no pooled
//! keep-alive connection in the count.
//!
//! Azure OpenAI's path, `/openai/deployments/{deployment}/chat/completions`, answers Azure's
//! recorded chat (or stream, with its identity-less first chunk) and identity headers when
//! the request carries an `api-key` header and an `api-version` query, else a 401.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use futures_util::StreamExt as _;
use serde_json::Value;

/// The pause between two events of a stream.
const EVENT_GAP: Duration = Duration::from_millis(2);

/// How long the `slow` upstream waits before answering.
pub const SLOW_FIRST_BYTE: Duration = Duration::from_secs(3);

/// How long the `paced` upstream waits before a whole answer.
pub const PACED_FIRST_BYTE: Duration = Duration::from_millis(200);

/// The pause between two events of a `paced` stream.
pub const PACED_EVENT_GAP: Duration = Duration::from_millis(50);

/// How long the `hang`, `stall` and `stall-stream` upstreams keep silent: longer than any
/// test waits.
pub const HANG: Duration = Duration::from_secs(3600);

/// The pause between two bytes of the `trickle` upstream's answer.
pub const TRICKLE_GAP: Duration = Duration::from_millis(1);

/// The pause between two bytes of the `slow-loris` upstream: each wait is short, the whole
/// answer takes minutes.
pub const SLOW_LORIS_GAP: Duration = Duration::from_millis(250);

/// The size of the `huge` upstream's answer and of the `huge-stream` upstream's padding.
pub const HUGE_BODY: usize = 8 * 1024 * 1024;

/// The size of the pieces the `huge` upstreams send.
const HUGE_PIECE: usize = 64 * 1024;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../ascribe-dialects/tests/fixtures/", $name))
    };
}

const OPENAI_CHAT: &str = fixture!("openai-chat.json");
const OPENAI_CHAT_STREAM: &str = fixture!("openai-chat-stream.sse");
const OPENAI_RESPONSES: &str = fixture!("openai-responses.json");
const OPENAI_RESPONSES_STREAM: &str = fixture!("openai-responses-stream.sse");
const OPENAI_RATE_LIMITED: &str = fixture!("openai-error-429.json");
const OPENAI_SERVER_ERROR: &str = fixture!("openai-error-500.json");
const OPENAI_UNAVAILABLE: &str = concat!(
    r#"{"error":{"message":"The engine is currently overloaded, please try again later.","#,
    r#""type":"server_error","param":null,"code":null}}"#
);
const ANTHROPIC_MESSAGES: &str = fixture!("anthropic-messages.json");
const ANTHROPIC_MESSAGES_STREAM: &str = fixture!("anthropic-messages-stream.sse");
const ANTHROPIC_OVERLOADED: &str = fixture!("anthropic-error-529.json");
const AZURE_CHAT: &str = fixture!("azure-openai-chat.json");
const AZURE_CHAT_STREAM: &str = fixture!("azure-openai-chat-stream.sse");
const EMBEDDINGS: &str = concat!(
    r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"#,
    r#""model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}"#
);

/// A running stand-in upstream; it stops when dropped.
pub struct StandInUpstream {
    address: SocketAddr,
    models: Arc<Mutex<Vec<String>>>,
    received: Received,
    stop: tokio::sync::watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
}

/// One request the stand-in answered.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// The request's path, such as `/v1/chat/completions`.
    pub path: String,
    /// The `model` of its JSON body, empty when there is none.
    pub model: String,
    /// Its headers, names in lowercase, in the order they came.
    pub headers: Vec<(String, String)>,
}

impl ReceivedRequest {
    /// The value of header `name` (lowercase), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(sent, _)| sent == name)
            .map(|(_, value)| value.as_str())
    }
}

/// How many requests [`StandInUpstream::received`] remembers, the latest ones; a benchmark's
/// stand-in does not grow without end.
pub const REMEMBERED: usize = 10_000;

type Received = Arc<Mutex<std::collections::VecDeque<ReceivedRequest>>>;

impl StandInUpstream {
    /// Starts serving on a free loopback port, on a runtime of its own.
    pub fn start() -> std::io::Result<StandInUpstream> {
        StandInUpstream::start_at(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts serving on `address`: a test that dropped a stand-in (which closes every
    /// connection it held) starts its successor where deployments already point.
    pub fn start_at(address: SocketAddr) -> std::io::Result<StandInUpstream> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(address))?;
        let address = listener.local_addr()?;
        let models = Arc::new(Mutex::new(vec!["standin".to_owned()]));
        let listed = Arc::clone(&models);
        let received = Received::default();
        let app = Router::new()
            .route("/v1/models", get(move || list_models(Arc::clone(&listed))))
            .route("/v1/chat/completions", post(answer))
            .route("/v1/responses", post(answer))
            .route("/v1/embeddings", post(answer))
            .route("/v1/messages", post(answer))
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(azure),
            )
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&received),
                remember,
            ));
        let listener = listener.tap_io(|connection| {
            let _ = connection.set_nodelay(true);
        });
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let signal = async move {
            let _ = stopped.wait_for(|stopped| *stopped).await;
        };
        runtime.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
        });
        Ok(StandInUpstream {
            address,
            models,
            received,
            stop,
            _runtime: runtime,
        })
    }

    /// The requests received so far (the last [`REMEMBERED`]), in the order they arrived.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received
            .lock()
            .map(|received| received.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Sets the ids `GET /v1/models` lists from now on.
    pub fn set_models(&self, ids: &[&str]) {
        if let Ok(mut models) = self.models.lock() {
            *models = ids.iter().map(|id| (*id).to_owned()).collect();
        }
    }

    /// Stops accepting connections and frees its port (soon after, not on return), closes
    /// the connections that are idle between two requests, and closes each other one once
    /// its answer is sent: a connection whose answer never ends (`hang`, `stall`) stays open
    /// until its caller closes it. So what a gateway still holds open to a stand-in told
    /// to stop is either an answer in flight or a connection it forgot; its idle pooled
    /// connections are gone.
    pub fn stop_accepting(&self) {
        let _ = self.stop.send(true);
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The root URL, which Azure deployments point at: `http://127.0.0.1:PORT`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The base URL deployments point at: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }
}

/// Remembers a request's path, model and headers, then lets it through.
async fn remember(
    axum::extract::State(received): axum::extract::State<Received>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|request| request["model"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    if let Ok(mut received) = received.lock() {
        if received.len() == REMEMBERED {
            received.pop_front();
        }
        received.push_back(ReceivedRequest {
            path: parts.uri.path().to_owned(),
            model,
            headers,
        });
    }
    next.run(axum::extract::Request::from_parts(parts, Body::from(body)))
        .await
}

async fn list_models(models: Arc<Mutex<Vec<String>>>) -> Response {
    let ids = models
        .lock()
        .map(|models| models.clone())
        .unwrap_or_default();
    let data: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model"}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

async fn answer(body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("").to_owned();
    let stream = request["stream"].as_bool().unwrap_or(false);
    match (model.as_str(), stream) {
        ("openai-chat", false) => json(200, OPENAI_CHAT),
        ("openai-chat", true) => sse(OPENAI_CHAT_STREAM, false),
        ("openai-chat-cut", _) => sse(OPENAI_CHAT_STREAM, true),
        ("openai-responses", false) => json(200, OPENAI_RESPONSES),
        ("openai-responses", true) => sse(OPENAI_RESPONSES_STREAM, false),
        ("openai-embeddings", _) => json(200, EMBEDDINGS),
        ("anthropic-messages", false) => json(200, ANTHROPIC_MESSAGES),
        ("anthropic-messages", true) => sse(ANTHROPIC_MESSAGES_STREAM, false),
        ("anthropic-overloaded", _) => json(529, ANTHROPIC_OVERLOADED),
        ("openai-rate-limited", _) => {
            let mut response = json(429, OPENAI_RATE_LIMITED);
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("7"));
            response
        }
        ("garbage", _) => (StatusCode::OK, "<html>upstream proxy error</html>").into_response(),
        ("echo", _) => {
            let mut answer: Value = serde_json::from_str(OPENAI_CHAT).unwrap_or(Value::Null);
            answer["model"] = Value::String(model);
            axum::Json(answer).into_response()
        }
        ("slow", _) => {
            tokio::time::sleep(SLOW_FIRST_BYTE).await;
            json(200, OPENAI_CHAT)
        }
        ("paced", false) => {
            tokio::time::sleep(PACED_FIRST_BYTE).await;
            json(200, OPENAI_CHAT)
        }
        ("paced", true) => paced_sse(OPENAI_CHAT_STREAM, false, PACED_EVENT_GAP),
        ("openai-server-error", _) => json(500, OPENAI_SERVER_ERROR),
        ("openai-unavailable", _) => json(503, OPENAI_UNAVAILABLE),
        ("unavailable-html", _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
        )
            .into_response(),
        ("hang", _) => {
            tokio::time::sleep(HANG).await;
            json(200, OPENAI_CHAT)
        }
        ("stall", _) => stalled(OPENAI_CHAT.split_at(OPENAI_CHAT.len() / 2).0, false),
        ("trickle", _) => trickle(OPENAI_CHAT, TRICKLE_GAP, "application/json"),
        ("slow-loris", false) => trickle(OPENAI_CHAT, SLOW_LORIS_GAP, "application/json"),
        ("slow-loris", true) => trickle(OPENAI_CHAT_STREAM, SLOW_LORIS_GAP, "text/event-stream"),
        ("stall-stream", _) => {
            let events: Vec<&'static str> = OPENAI_CHAT_STREAM.split_inclusive("\n\n").collect();
            let first = events.iter().take(2).map(|event| event.len()).sum();
            stalled(&OPENAI_CHAT_STREAM[..first], true)
        }
        ("cut-early", _) => {
            // A comment first, a moment before the reset, so that the headers go out.
            let items = [
                Ok(Bytes::from_static(b": connected\n\n")),
                Err(std::io::Error::other("stand-in resets")),
            ];
            let paced = futures_util::stream::iter(items).then(|item| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                item
            });
            let mut response = Response::new(Body::from_stream(paced));
            response.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/event-stream"),
            );
            response
        }
        ("huge", _) => huge_answer(),
        ("huge-stream", _) => huge_stream(),
        _ => json(
            404,
            concat!(
                r#"{"error":{"message":"no such model","type":"invalid_request_error","#,
                r#""param":"model","code":"model_not_found"}}"#
            ),
        ),
    }
}

async fn azure(
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let has_version = uri
        .query()
        .is_some_and(|query| query.contains("api-version="));
    if headers.get("api-key").is_none() || !has_version {
        let error = concat!(
            r#"{"error":{"code":"401","message":"Access denied due to invalid "#,
            r#"subscription key or wrong API endpoint."}}"#
        );
        return json(401, error);
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut response = match request["stream"].as_bool() {
        Some(true) => sse(AZURE_CHAT_STREAM, false),
        _ => json(200, AZURE_CHAT),
    };
    let identity_headers = response.headers_mut();
    if let Ok(name) = HeaderValue::from_str(&deployment) {
        identity_headers.insert("x-ms-deployment-name", name);
    }
    identity_headers.insert("x-ms-region", HeaderValue::from_static("East US 2"));
    identity_headers.insert(
        "azureml-model-session",
        HeaderValue::from_static("v20250225-1-161802030"),
    );
    response
}

fn json(status: u16, body: &'static str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_static("req_standin"));
    response
}

/// The events of `text` one by one, a few milliseconds apart as a model streams them; `cut`
/// stops after half of them with an error, which resets the connection mid-body.
fn sse(text: &'static str, cut: bool) -> Response {
    paced_sse(text, cut, EVENT_GAP)
}

/// [`sse`] with `gap` between two events.
fn paced_sse(text: &'static str, cut: bool, gap: Duration) -> Response {
    let events: Vec<&'static str> = text.split_inclusive("\n\n").collect();
    let keep = if cut { events.len() / 2 } else { events.len() };
    let mut items: Vec<Result<Bytes, std::io::Error>> = events[..keep]
        .iter()
        .map(|event| Ok(Bytes::from_static(event.as_bytes())))
        .collect();
    if cut {
        items.push(Err(std::io::Error::other("stand-in cuts the stream")));
    }
    let paced = futures_util::stream::iter(items).then(move |item| async move {
        tokio::time::sleep(gap).await;
        item
    });
    let mut response = Response::new(Body::from_stream(paced));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// A 200 that sends `start`, then nothing until [`HANG`] has passed.
fn stalled(start: &'static str, stream: bool) -> Response {
    let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(start) });
    let silence = futures_util::stream::once(async {
        tokio::time::sleep(HANG).await;
        Ok::<_, std::io::Error>("")
    });
    let mut response = Response::new(Body::from_stream(first.chain(silence)));
    let content_type = match stream {
        true => "text/event-stream",
        false => "application/json",
    };
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

/// A 200 whose body comes one byte at a time, `gap` apart.
fn trickle(text: &'static str, gap: Duration, content_type: &'static str) -> Response {
    let bytes =
        futures_util::stream::iter(text.as_bytes().chunks(1)).then(move |byte| async move {
            tokio::time::sleep(gap).await;
            Ok::<_, std::io::Error>(Bytes::from_static(byte))
        });
    let mut response = Response::new(Body::from_stream(bytes));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

/// A chat answer of [`HUGE_BODY`] bytes, its content padded; made once, cheaply (the
/// stand-in's one thread also paces the other answers).
fn huge_answer() -> Response {
    static BODY: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| {
        let start = concat!(
            r#"{"id":"chatcmpl-huge","object":"chat.completion","created":1733000000,"#,
            r#""model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"#,
            r#""assistant","content":""#
        );
        let end = r#""},"finish_reason":"stop"}]}"#;
        let padding = "a".repeat(HUGE_BODY - start.len() - end.len());
        Bytes::from([start, padding.as_str(), end].concat())
    });
    let pieces: Vec<Result<Bytes, std::io::Error>> = (0..body.len())
        .step_by(HUGE_PIECE)
        .map(|start| Ok(body.slice(start..body.len().min(start + HUGE_PIECE))))
        .collect();
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(pieces)));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// [`HUGE_BODY`] bytes of SSE comments, which name no model, then the chat stream.
fn huge_stream() -> Response {
    let line = format!(": {}\n", "p".repeat(1021));
    let piece = Bytes::from(line.repeat(HUGE_PIECE / line.len()));
    let padding = (0..HUGE_BODY / piece.len()).map(move |_| Ok(piece.clone()));
    let events = OPENAI_CHAT_STREAM
        .split_inclusive("\n\n")
        .map(|event| Ok(Bytes::from_static(event.as_bytes())));
    let items: Vec<Result<Bytes, std::io::Error>> = padding.chain(events).collect();
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(items)));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    response
}
