//! A streamed answer: the SSE parser, the stream observer that reads the served identity
//! from the first events, and the streaming answer-model rewrite.
//!
//! Input: one byte choosing the endpoint, one byte seeding where the stream is cut into
//! pieces, then the stream's bytes. Beyond "never panics": however the bytes are cut, the
//! parser yields the same events, the observer reaches the same outcome (and counts every
//! byte), and the rewriter writes the same bytes.
#![no_main]

use ascribe_dialects::{Api, ServedModelRewriter, SseParser, StreamObserver, Upstream};
use libfuzzer_sys::fuzz_target;

const APIS: [Api; 4] = [
    Api::ChatCompletions,
    Api::Responses,
    Api::Embeddings,
    Api::Messages,
];

/// `bytes` cut into pieces whose lengths follow from `seed`.
fn pieces(bytes: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    let mut state = u32::from(seed) | 1;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = (((state >> 16) % 17) as usize).min(rest.len());
        let (piece, tail) = rest.split_at(len);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fuzz_target!(|data: &[u8]| {
    let [selector, seed, stream @ ..] = data else {
        return;
    };
    let api = APIS[usize::from(*selector) % APIS.len()];
    let cut = pieces(stream, *seed);

    let mut whole = SseParser::new();
    let mut events = whole.feed(stream);
    events.extend(whole.finish());
    let mut split = SseParser::new();
    let mut split_events: Vec<_> = cut.iter().flat_map(|piece| split.feed(piece)).collect();
    split_events.extend(split.finish());
    assert_eq!(
        events, split_events,
        "the parser saw different events after a cut"
    );

    let headers = [("x-request-id".to_owned(), "req_fuzz".to_owned())];
    let mut observer = StreamObserver::new(api, Upstream::OpenaiCompatible, &headers);
    observer.feed(stream);
    let outcome = observer.finish();
    assert_eq!(outcome.n_bytes, stream.len() as u64);
    let mut observer = StreamObserver::new(api, Upstream::OpenaiCompatible, &headers);
    for piece in &cut {
        observer.feed(piece);
        let _ = observer.identity_ready();
        let _ = observer.identity();
    }
    assert_eq!(
        observer.finish(),
        outcome,
        "the observer's outcome depends on the cut"
    );

    let mut rewriter = ServedModelRewriter::new(api, "v1");
    let mut rewritten = rewriter.feed(stream);
    rewritten.extend(rewriter.finish());
    let mut rewriter = ServedModelRewriter::new(api, "v1");
    let mut split_rewritten: Vec<u8> = cut.iter().flat_map(|piece| rewriter.feed(piece)).collect();
    split_rewritten.extend(rewriter.finish());
    assert_eq!(rewritten, split_rewritten, "the rewrite depends on the cut");
});
