//! Properties over arbitrary input: the parsers never panic, and splitting never changes
//! what the SSE parser sees. These are the same entry points a fuzzer would drive.

use ascribe_dialects::{
    identity_from_response, parse_request, rewrite_served_model, Api, ServedModelRewriter,
    SseParser, StreamObserver, Upstream,
};
use proptest::prelude::*;

const APIS: [Api; 4] = [
    Api::ChatCompletions,
    Api::Responses,
    Api::Embeddings,
    Api::Messages,
];

/// Bytes that look like an event stream often enough to reach the JSON paths.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"event: message_start\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b": comment\n".to_vec()),
        Just(br#"{"model":"m","choices":[{"finish_reason":"stop"}],"usage":{}}"#.to_vec()),
        Just(br#"{"type":"message_start","message":{"model":"m"}}"#.to_vec()),
        Just(br#"{"type":"response.failed","response":{"error":{"code":1}}}"#.to_vec()),
        Just(br#"{"type":"error","error":"x"}"#.to_vec()),
        Just(b"[DONE]".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn parse_all(pieces: &[&[u8]]) -> Vec<ascribe_dialects::SseEvent> {
    let mut parser = SseParser::new();
    let mut events: Vec<_> = pieces.iter().flat_map(|piece| parser.feed(piece)).collect();
    events.extend(parser.finish());
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sse_parser_never_panics_and_ignores_splits(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(bytes.len() + 1);
        let (head, tail) = bytes.split_at(cut);
        prop_assert_eq!(parse_all(&[head, tail]), parse_all(&[&bytes]));
    }

    #[test]
    fn stream_observer_never_panics(bytes in stream_bytes(), cut in any::<prop::sample::Index>()) {
        for api in APIS {
            let mut observer = StreamObserver::new(api, Upstream::OpenaiCompatible, &[]);
            let cut = cut.index(bytes.len() + 1);
            observer.feed(&bytes[..cut]);
            let _ = observer.identity_ready();
            observer.feed(&bytes[cut..]);
            let outcome = observer.finish();
            prop_assert_eq!(outcome.n_bytes, bytes.len() as u64);
        }
    }

    #[test]
    fn request_and_body_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256))
    {
        for api in APIS {
            if let Ok(request) = parse_request(api, &bytes) {
                let upstream_body = request.upstream_body("up");
                let reparsed = parse_request(api, &upstream_body);
                prop_assert_eq!(reparsed.map(|r| r.model().to_owned()).ok(), Some("up".to_owned()));
            }
        }
        let _ = identity_from_response(Upstream::Openai, &[], &bytes);
        let _ = rewrite_served_model(&bytes, "v1");
        let mut rewriter = ServedModelRewriter::new(Api::Messages, "v1");
        let _ = rewriter.feed(&bytes);
        let _ = rewriter.finish();
    }

    #[test]
    fn requests_from_json_values_round_trip(
        model in "[a-z0-9.:/-]{1,20}",
        decision in proptest::option::of("[ -~]{0,12}"),
        extra in proptest::collection::btree_map("[a-z_]{1,8}", any::<i32>(), 0..4),
    ) {
        let mut body = serde_json::json!({ "model": model, "stream": true });
        for (key, value) in &extra {
            body[key.as_str()] = (*value).into();
        }
        if let Some(decision) = &decision {
            body["metadata"] = serde_json::json!({ "ascribe_decision": decision });
        }
        let bytes = serde_json::to_vec(&body).expect("json");
        let request = parse_request(Api::ChatCompletions, &bytes).expect("valid");
        prop_assert_eq!(request.model(), model.as_str());
        let decision = decision.filter(|decision| !decision.is_empty());
        prop_assert_eq!(request.decision_reference(), decision.as_deref());

        let upstream: serde_json::Value =
            serde_json::from_slice(&request.upstream_body("pinned")).expect("json");
        body["model"] = "pinned".into();
        if let Some(object) = body.as_object_mut() {
            object.remove("metadata");
        }
        prop_assert_eq!(upstream, body);
    }
}
