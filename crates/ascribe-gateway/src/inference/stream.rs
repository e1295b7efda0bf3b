//! Streamed answers: hold the first events until the served identity is known, record it,
//! then pass every chunk through as it arrives and record how the stream ended.
//!
//! The caller's first byte waits only for the upstream's first identity-bearing event (the
//! first chunk for OpenAI, `message_start` for Anthropic, `response.created` for Responses)
//! and one ledger commit. The completion entry (digest, usage, finish, truncation) is
//! written when the upstream ends, is cut, or the caller goes away.

use ascribe_dialects::{ServedModelRewriter, StreamObserver};
use ascribe_inference::{payload_digest, CompletionRecord, Timings};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::error::InferenceError;
use super::record::{millis, Call, Outcome};
use super::upstream::{self, header_pairs, UpstreamFailure};
use crate::state::AppState;

/// Chunks buffered between the upstream reader and the caller's connection.
const RELAY_BUFFER: usize = 64;

type Chunks =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// Records the stream's identity, then relays it; see the module documentation.
pub(crate) async fn relay(
    state: &AppState,
    call: Call,
    response: reqwest::Response,
    deadline: upstream::Deadline,
    progress: &mut super::Progress,
) -> Result<Response, InferenceError> {
    let headers = header_pairs(response.headers());
    let first_byte = millis(call.started.elapsed());
    let mut observer = StreamObserver::new(call.api, call.route.upstream, &headers);
    let mut chunks: Chunks = Box::pin(response.bytes_stream());
    let timeout = state.config().upstream_timeout;

    // Hold what arrives until an event names the served model, or the stream is over. No
    // byte has reached the caller yet, so an upstream that fails here, sends more than the
    // gateway reads of a whole answer or reaches the call's deadline, is a recorded failure
    // in the caller's dialect. Once released, a stream is bounded between chunks only.
    let limit = state.config().max_upstream_body;
    let (mut held, mut held_bytes) = (Vec::new(), 0);
    let mut ended = false;
    while !observer.identity_ready() {
        let failure = match upstream::next_chunk_before(&mut chunks, timeout, deadline).await {
            Ok(Some(chunk)) if held_bytes + chunk.len() <= limit => {
                held_bytes += chunk.len();
                observer.feed(&chunk);
                held.push(chunk);
                continue;
            }
            Ok(Some(_)) => UpstreamFailure::TooLarge(limit),
            Ok(None) => {
                ended = true;
                break;
            }
            Err(failure) => failure,
        };
        progress.upstream_wait = Some(call.started.elapsed());
        return Err(super::record_failure(state, &call, &failure).await);
    }

    progress.upstream_wait = Some(call.started.elapsed());
    let served = observer.identity().clone();
    let verdict = super::verdict_of(&call, &served);
    let rejected = verdict.is_mismatch() && super::rejects_mismatch(&call);
    let outcome = Outcome {
        status: if rejected { 502 } else { 200 },
        outcome: if rejected {
            "rejected_mismatch"
        } else {
            "stream_open"
        },
        response_sha256: None,
        usage: None,
        error: rejected.then(|| "served model rejected by the alias's policy".to_owned()),
        upstream_ms: Some(Timings {
            first_byte,
            total: None,
        }),
        response_body: None,
    };
    let recording = call.record(&served, &verdict, outcome);
    let recorded = call.write(state, recording, &served, &verdict).await?;

    if rejected {
        call.span.failed(
            "rejected_mismatch",
            "served model rejected by the alias's policy",
        );
        let reason = "the caller was given an error: served model rejected by policy";
        complete(state, &call, observer, Some(reason.to_owned()), None).await;
        return Err(super::identity_rejected(&call, &served));
    }
    let mut answer_headers = call.headers(&recorded);
    super::copy_headers(
        &headers,
        &mut answer_headers,
        &["x-request-id", "request-id"],
    );
    Ok(start_relay(
        state,
        call,
        answer_headers,
        observer,
        held,
        chunks,
        ended,
    ))
}

/// Sends the held chunks and then the rest of the stream to the caller, from a task that
/// records the completion whatever happens to either side.
fn start_relay(
    state: &AppState,
    call: Call,
    headers: HeaderMap,
    mut observer: StreamObserver,
    held: Vec<Bytes>,
    mut chunks: Chunks,
    ended: bool,
) -> Response {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(RELAY_BUFFER);
    let tracked = state.clone();
    let state = state.clone();
    let timeout = state.config().upstream_timeout;
    let mut caller_side = CallerSide {
        sender,
        rewriter: super::answer_model_rewrite(&call)
            .map(|requested| ServedModelRewriter::new(call.api, requested)),
        gone: false,
    };
    let mut kept = Kept::new(
        call.retained_request.is_some(),
        state.config().max_upstream_body,
    );
    tracked.spawn_tracked(async move {
        let mut cut = None;
        for chunk in held {
            kept.add(&chunk);
            caller_side.send(chunk).await;
        }
        if !ended {
            loop {
                if caller_side.gone {
                    cut = Some("the caller disconnected before the stream ended".to_owned());
                    break;
                }
                match upstream::next_chunk(&mut chunks, timeout).await {
                    Ok(Some(chunk)) => {
                        observer.feed(&chunk);
                        kept.add(&chunk);
                        caller_side.send(chunk).await;
                    }
                    Ok(None) => break,
                    Err(failure) => {
                        cut = Some(failure.describe());
                        caller_side.fail().await;
                        break;
                    }
                }
            }
        }
        caller_side.finish().await;
        complete(&state, &call, observer, cut, kept.body).await;
    });

    let body = Body::from_stream(tokio_stream_of(receiver));
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().extend(headers);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The streamed body, kept for deployments whose retention is `full`, up to the gateway's
/// body limit; a longer stream is recorded by digest only.
struct Kept {
    body: Option<Vec<u8>>,
    limit: usize,
}

impl Kept {
    fn new(retain: bool, limit: usize) -> Kept {
        Kept {
            body: retain.then(Vec::new),
            limit,
        }
    }

    fn add(&mut self, chunk: &[u8]) {
        let over = self
            .body
            .as_ref()
            .is_some_and(|body| body.len() + chunk.len() > self.limit);
        if over {
            tracing::warn!(
                limit = self.limit,
                "streamed body too long to keep; digest only"
            );
            self.body = None;
        }
        if let Some(body) = &mut self.body {
            body.extend_from_slice(chunk);
        }
    }
}

/// The caller's end of a relay: the channel to its connection and, where the alias asks
/// for it, the rewriter that puts the requested name in each event's `model`.
struct CallerSide {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    rewriter: Option<ServedModelRewriter>,
    /// Set once the caller's connection is gone; nothing more is sent.
    gone: bool,
}

impl CallerSide {
    async fn send(&mut self, chunk: Bytes) {
        let chunk = match &mut self.rewriter {
            Some(rewriter) => Bytes::from(rewriter.feed(&chunk)),
            None => chunk,
        };
        if !self.gone && !chunk.is_empty() {
            self.gone = self.sender.send(Ok(chunk)).await.is_err();
        }
    }

    /// Ends the caller's body with an error, so its client sees a cut stream as cut.
    async fn fail(&mut self) {
        let error = std::io::Error::other("upstream stream was cut");
        let _ = self.sender.send(Err(error)).await;
        self.rewriter = None;
    }

    /// Sends what the rewriter still holds; dropping `self` then ends the caller's body.
    async fn finish(mut self) {
        if let Some(rewriter) = self.rewriter.take() {
            let rest = Bytes::from(rewriter.finish());
            if !self.gone && !rest.is_empty() {
                let _ = self.sender.send(Ok(rest)).await;
            }
        }
    }
}

/// A stream of what the relay task sends.
fn tokio_stream_of(
    receiver: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    .boxed()
}

/// Appends the `inference.completed` entry: how the stream ended, what it carried.
async fn complete(
    state: &AppState,
    call: &Call,
    observer: StreamObserver,
    cut: Option<String>,
    kept: Option<Vec<u8>>,
) {
    let outcome = observer.finish();
    let truncated = !outcome.completed;
    let error = outcome
        .error
        .clone()
        .or(cut)
        .or_else(|| truncated.then(|| "the stream ended before its terminal event".to_owned()));
    call.span.stream_ended(
        &outcome.identity,
        outcome.usage.as_ref(),
        outcome.finish_reason.as_deref(),
        error.as_deref().filter(|_| truncated),
    );
    let record = CompletionRecord {
        inference_id: call.inference_id.clone(),
        completed: outcome.completed,
        truncated,
        response_sha256: outcome.body_sha256,
        n_bytes: outcome.n_bytes,
        served: serde_json::to_value(&outcome.identity).unwrap_or_default(),
        usage: outcome.usage,
        finish_reason: outcome.finish_reason,
        error,
        retained_response: kept.as_deref().map(payload_digest),
    };
    let entry = match kept {
        Some(body) => record.into_entry_with_payload(body),
        None => record.into_entry(),
    };
    let entry = match entry {
        Ok(entry) => entry,
        Err(error) => {
            tracing::error!(inference_id = %call.inference_id, %error, "completion not encodable");
            return;
        }
    };
    match state.append_all(vec![entry]).await.pop() {
        Some(Ok(appended)) => {
            state.metrics().stream_completed(!truncated);
            tracing::info!(
                inference_id = %call.inference_id,
                seq = appended.entry.seq,
                truncated,
                "stream completion recorded"
            );
        }
        Some(Err(error)) => tracing::error!(
            inference_id = %call.inference_id,
            %error,
            "stream completion not recorded; the identity entry stands"
        ),
        None => {}
    }
}
