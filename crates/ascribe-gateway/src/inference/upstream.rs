//! Calling the upstream: one HTTP request with the gateway's own credentials, and bounded
//! reads of what comes back.

use std::time::{Duration, Instant};

use ascribe_dialects::UpstreamTarget;
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::state::AppState;

/// Why an upstream gave no usable answer.
#[derive(Debug)]
pub(crate) enum UpstreamFailure {
    /// No response headers, or no next chunk, within the configured timeout.
    Timeout,
    /// The answer was not complete within the call's deadline (`upstream.deadline`).
    Deadline(Duration),
    /// The connection failed or was reset.
    Unreachable(String),
    /// The body is larger than the gateway reads.
    TooLarge(usize),
}

impl UpstreamFailure {
    /// The outcome word recorded in the ledger.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            UpstreamFailure::Timeout | UpstreamFailure::Deadline(_) => "upstream_timeout",
            UpstreamFailure::Unreachable(_) => "upstream_unreachable",
            UpstreamFailure::TooLarge(_) => "upstream_error",
        }
    }

    /// What went wrong, for the record and the log; no body, no secret.
    pub(crate) fn describe(&self) -> String {
        match self {
            UpstreamFailure::Timeout => "the upstream did not answer in time".to_owned(),
            UpstreamFailure::Deadline(length) => format!(
                "the upstream's answer was not complete within {} s (upstream.deadline)",
                length.as_secs_f64()
            ),
            UpstreamFailure::Unreachable(cause) => format!("the upstream is unreachable: {cause}"),
            UpstreamFailure::TooLarge(limit) => {
                format!("the upstream's answer is larger than {limit} bytes")
            }
        }
    }
}

/// When a call must have its answer: a whole answer's last byte, or a stream's first event
/// that names the served model, is read before it or the call fails.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: tokio::time::Instant,
    length: Duration,
}

impl Deadline {
    /// The deadline of a call sent at `started`, `length` later.
    pub(crate) fn after(started: Instant, length: Duration) -> Deadline {
        Deadline {
            at: tokio::time::Instant::from_std(started + length),
            length,
        }
    }

    /// Runs `wait` until the deadline; past it, the call has failed.
    async fn bound<T>(
        self,
        wait: impl std::future::Future<Output = Result<T, UpstreamFailure>>,
    ) -> Result<T, UpstreamFailure> {
        match tokio::time::timeout_at(self.at, wait).await {
            Err(_) => Err(UpstreamFailure::Deadline(self.length)),
            Ok(result) => result,
        }
    }
}

/// Sends `body` to `target` and waits for the response headers.
pub(crate) async fn send(
    state: &AppState,
    target: &UpstreamTarget,
    body: Vec<u8>,
    deadline: Deadline,
) -> Result<reqwest::Response, UpstreamFailure> {
    let mut request = state.client().post(&target.url).body(body);
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    let timeout = state.config().upstream_timeout;
    let headers = async {
        match tokio::time::timeout(timeout, request.send()).await {
            Err(_) => Err(UpstreamFailure::Timeout),
            Ok(Err(error)) if error.is_timeout() => Err(UpstreamFailure::Timeout),
            // The error's text names the URL, never the credential headers.
            Ok(Err(error)) => Err(UpstreamFailure::Unreachable(without_url(&error))),
            Ok(Ok(response)) => Ok(response),
        }
    };
    deadline.bound(headers).await
}

fn without_url(error: &reqwest::Error) -> String {
    let mut cause = error.to_string();
    if let Some(url) = error.url() {
        cause = cause.replace(url.as_str(), "the upstream");
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = format!("{cause}: {inner}");
        source = inner.source();
    }
    cause
}

/// Reads a whole body, at most `limit` bytes, waiting at most `timeout` for each chunk and
/// finishing before `deadline`: an upstream that trickles a byte at a time, each within the
/// timeout, fails at the deadline instead of holding the call for as long as it trickles.
pub(crate) async fn read_body(
    response: reqwest::Response,
    limit: usize,
    timeout: Duration,
    deadline: Deadline,
) -> Result<Vec<u8>, UpstreamFailure> {
    let read = async {
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = next_chunk(&mut chunks, timeout).await? {
            if body.len() + chunk.len() > limit {
                return Err(UpstreamFailure::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    deadline.bound(read).await
}

/// [`next_chunk`], failing at `deadline`.
pub(crate) async fn next_chunk_before<S>(
    chunks: &mut S,
    timeout: Duration,
    deadline: Deadline,
) -> Result<Option<Bytes>, UpstreamFailure>
where
    S: futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    deadline.bound(next_chunk(chunks, timeout)).await
}

/// The next chunk of a body: `Ok(None)` at its end.
pub(crate) async fn next_chunk<S>(
    chunks: &mut S,
    timeout: Duration,
) -> Result<Option<Bytes>, UpstreamFailure>
where
    S: futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    match tokio::time::timeout(timeout, chunks.next()).await {
        Err(_) => Err(UpstreamFailure::Timeout),
        Ok(None) => Ok(None),
        Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        Ok(Some(Err(error))) => Err(UpstreamFailure::Unreachable(without_url(&error))),
    }
}

/// Response headers as (lowercase name, value) pairs; values that are not text are skipped.
pub(crate) fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}
