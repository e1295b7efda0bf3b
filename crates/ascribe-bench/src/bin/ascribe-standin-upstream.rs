//! `ascribe-standin-upstream`: the fastest OpenAI chat-completions server we can put behind a
//! gateway, so that a benchmark measures the gateway and not the model.
//!
//! `POST /v1/chat/completions` answers one fixed, small chat completion; with
//! `"stream": true` it answers an SSE stream of `--chunks` content chunks (plus the role chunk,
//! the finish chunk and `data: [DONE]`). The first event leaves at once; the following ones
//! `--chunk-gap-us` apart, as a model emits tokens. `GET /v1/models` lists the one model.
//! Every answer names `--model` as the served model, so a gateway that checks the served
//! identity sees the snapshot it expects. Sockets use `TCP_NODELAY`, so no event waits for a
//! delayed ACK, and the listen backlog is 4096, so hundreds of connections opened at once
//! are all accepted on their first SYN.
//!
//! It prints `listening on http://ADDRESS` as its first line on stdout, then serves until it
//! is killed:
//!
//! ```text
//! ascribe-standin-upstream --listen 127.0.0.1:0 --model gpt-4o-2024-08-06 --chunks 16
//! ```

use std::io::Write as _;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use clap::Parser;
use serde::Deserialize;
use serde_json::json;

/// Serves fixed OpenAI chat completions and streams on a loopback port.
#[derive(Debug, Parser)]
#[command(name = "ascribe-standin-upstream", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The served model every answer names.
    #[arg(long, default_value = "gpt-4o-2024-08-06")]
    model: String,
    /// Content chunks in a streamed answer.
    #[arg(long, default_value_t = 16)]
    chunks: usize,
    /// Microseconds between two events of a stream (the first one is not delayed).
    #[arg(long, default_value_t = 1000)]
    chunk_gap_us: u64,
    /// Worker threads of the async runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// What the server answers, built once at start.
#[derive(Clone)]
struct Answers {
    completion: Bytes,
    models: Bytes,
    events: std::sync::Arc<Vec<Bytes>>,
    gap: Duration,
}

/// The only part of a request the server reads.
#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    stream: bool,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let answers = Answers::build(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = bind(&args.listen).await?;
        let address = listener.local_addr()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{address}")?;
        stdout.flush()?;
        drop(stdout);
        let completions = answers.clone();
        let models = answers.models.clone();
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(move |body: Bytes| chat(completions.clone(), body)),
            )
            .route("/v1/models", get(move || json_response(models.clone())))
            .route("/healthz", get(|| async { "ok" }));
        let listener = listener.tap_io(|connection| {
            let _ = connection.set_nodelay(true);
        });
        axum::serve(listener, app).await
    })
}

/// Listens on `address` with a backlog of 4096: the default of 128 overflows when a load
/// generator opens hundreds of connections at once, and each dropped SYN costs a 1 s retry.
async fn bind(address: &str) -> std::io::Result<tokio::net::TcpListener> {
    let address = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{address} names no address")))?;
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(4096)
}

impl Answers {
    fn build(args: &Args) -> Answers {
        let model = &args.model;
        let completion = json!({
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_standin",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19},
        });
        let models = json!({
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 1_700_000_000,
                      "owned_by": "standin"}],
        });
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            let event = json!({
                "id": "chatcmpl-standin",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "system_fingerprint": "fp_standin",
                "choices": [{"index": 0, "delta": delta, "logprobs": null,
                             "finish_reason": finish}],
            });
            Bytes::from(format!("data: {event}\n\n"))
        };
        let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        events.extend(
            (0..args.chunks).map(|index| chunk(json!({"content": format!("t{index} ")}), None)),
        );
        events.push(chunk(json!({}), Some("stop")));
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Answers {
            completion: Bytes::from(completion.to_string()),
            models: Bytes::from(models.to_string()),
            events: std::sync::Arc::new(events),
            gap: Duration::from_micros(args.chunk_gap_us),
        }
    }
}

async fn chat(answers: Answers, body: Bytes) -> Response {
    let stream = match serde_json::from_slice::<ChatRequest>(&body) {
        Ok(request) => request.stream,
        Err(_) => return (StatusCode::BAD_REQUEST, "request body is not JSON").into_response(),
    };
    if !stream {
        return json_response(answers.completion).await;
    }
    // Event `index` leaves `gap` after event `index - 1`; event 0 leaves at once.
    let events = futures_util::stream::unfold(0usize, move |index| {
        let answers = answers.clone();
        async move {
            let event = answers.events.get(index)?.clone();
            if index > 0 && !answers.gap.is_zero() {
                tokio::time::sleep(answers.gap).await;
            }
            Some((Ok::<Bytes, std::io::Error>(event), index + 1))
        }
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn json_response(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-request-id", HeaderValue::from_static("req_standin"));
    response
}
