//! Calling the upstream: one HTTP request with the gateway's own credentials, and bounded
//! reads of what comes back.

use std::time::Duration;

use ascribe_dialects::UpstreamTarget;
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::state::AppState;

/// Why an upstream gave no usable answer.
#[derive(Debug)]
pub(crate) enum UpstreamFailure {
    /// No response headers, or no next chunk, within the configured timeout.
    Timeout,
    /// The connection failed or was reset.
    Unreachable(String),
    /// The body is larger than the gateway reads.
    TooLarge(usize),
}

impl UpstreamFailure {
    /// The outcome word recorded in the ledger.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            UpstreamFailure::Timeout => "upstream_timeout",
            UpstreamFailure::Unreachable(_) => "upstream_unreachable",
            UpstreamFailure::TooLarge(_) => "upstream_error",
        }
    }

    /// What went wrong, for the record and the log; no body, no secret.
    pub(crate) fn describe(&self) -> String {
        match self {
            UpstreamFailure::Timeout => "the upstream did not answer in time".to_owned(),
            UpstreamFailure::Unreachable(cause) => format!("the upstream is unreachable: {cause}"),
            UpstreamFailure::TooLarge(limit) => {
                format!("the upstream's answer is larger than {limit} bytes")
            }
        }
    }
}

/// Sends `body` to `target` and waits for the response headers.
pub(crate) async fn send(
    state: &AppState,
    target: &UpstreamTarget,
    body: Vec<u8>,
) -> Result<reqwest::Response, UpstreamFailure> {
    let mut request = state.client().post(&target.url).body(body);
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    match tokio::time::timeout(state.config().upstream_timeout, request.send()).await {
        Err(_) => Err(UpstreamFailure::Timeout),
        Ok(Err(error)) if error.is_timeout() => Err(UpstreamFailure::Timeout),
        // The error's text names the URL, never the credential headers.
        Ok(Err(error)) => Err(UpstreamFailure::Unreachable(without_url(&error))),
        Ok(Ok(response)) => Ok(response),
    }
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

/// Reads a whole body, at most `limit` bytes, waiting at most `timeout` for each chunk.
///
/// LIMITATION: `timeout` bounds each wait, not the whole read: an upstream that trickles a
/// byte at a time, each within the timeout, holds the call (its task and both connections)
/// for as long as it trickles and the caller waits, up to `limit` bytes; there is no
/// overall deadline setting. The `trickle` and `stall` cases of
/// `crates/ascribe-cli/tests/upstream_faults.rs` show both sides of the per-chunk bound.
pub(crate) async fn read_body(
    response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, UpstreamFailure> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = next_chunk(&mut chunks, timeout).await? {
        if body.len() + chunk.len() > limit {
            return Err(UpstreamFailure::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
