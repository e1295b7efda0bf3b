//! A caller's request body, as `ascribe_dialects::parse_request` reads it on each endpoint.
//!
//! Input: one byte choosing the endpoint, then the body. Beyond "never panics": a refused
//! body is always the caller's fault (400) with a message, and an accepted body's upstream
//! version is JSON that reads back with the pinned model, the same `stream` and no decision
//! reference left in it.
#![no_main]

use ascribe_dialects::{parse_request, Api, ErrorKind};
use libfuzzer_sys::fuzz_target;

const APIS: [Api; 4] = [
    Api::ChatCompletions,
    Api::Responses,
    Api::Embeddings,
    Api::Messages,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let api = APIS[usize::from(selector) % APIS.len()];
    match parse_request(api, body) {
        Err(error) => {
            assert_eq!(error.caller_kind(), ErrorKind::InvalidRequest, "{error}");
            assert!(!error.to_string().is_empty());
        }
        Ok(request) => {
            assert_eq!(request.body(), body);
            assert!(!request.model().is_empty());
            let upstream = request.upstream_body("pinned-model");
            let reread = match parse_request(api, &upstream) {
                Ok(reread) => reread,
                Err(error) => panic!(
                    "upstream body of an accepted request is refused ({error}): {}",
                    String::from_utf8_lossy(&upstream)
                ),
            };
            assert_eq!(reread.model(), "pinned-model");
            assert_eq!(reread.stream(), request.stream());
            assert_eq!(
                reread.decision_reference(),
                None,
                "the reference never goes upstream"
            );
            let value: serde_json::Value =
                serde_json::from_slice(&upstream).expect("upstream body is JSON");
            assert!(value.is_object());
        }
    }
});
