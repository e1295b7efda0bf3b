//! Fixture loading shared by the integration tests.

#![allow(dead_code)]

use ascribe_dialects::{Api, StreamObserver, StreamOutcome, Upstream};

/// The bytes of `tests/fixtures/{name}`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}

/// The headers in a `*-headers.json` fixture, without its `_note`.
pub fn headers(name: &str) -> Vec<(String, String)> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&fixture(name)).unwrap_or_default();
    object
        .into_iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .filter_map(|(name, value)| Some((name, value.as_str()?.to_owned())))
        .collect()
}

/// Feeds `pieces` to a fresh observer and finishes it.
pub fn observe(
    api: Api,
    upstream: Upstream,
    headers: &[(String, String)],
    pieces: &[&[u8]],
) -> StreamOutcome {
    let mut observer = StreamObserver::new(api, upstream, headers);
    for piece in pieces {
        observer.feed(piece);
    }
    observer.finish()
}
