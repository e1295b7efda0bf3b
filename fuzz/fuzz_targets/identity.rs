//! The served identity of a whole answer: `identity_from_response` over the provider's
//! headers and body, `classify` against an expectation, and the answer-model rewrite.
//!
//! Input: one byte choosing the upstream dialect, then `name: value` header lines, a blank
//! line, and the body (an HTTP response's layout). Beyond "never panics": the rewrite keeps
//! a JSON body JSON and leaves anything else (invalid UTF-8 included) byte for byte, and a model read from the body
//! is never empty (null, "" and absent all mean "not disclosed").
#![no_main]

use ascribe_dialects::{
    classify, identity_from_response, rewrite_served_model, IdentitySource, ServedIdentity,
    Upstream,
};
use libfuzzer_sys::fuzz_target;

const UPSTREAMS: [Upstream; 4] = [
    Upstream::Openai,
    Upstream::AzureOpenai,
    Upstream::Anthropic,
    Upstream::OpenaiCompatible,
];

/// Splits an HTTP-like message into its header pairs and its body.
fn headers_and_body(bytes: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let split = bytes.windows(2).position(|pair| pair == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&bytes[..at], &bytes[at + 2..]),
        None => (&[][..], bytes),
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    (headers, body)
}

/// Whether `bytes` are one JSON text: UTF-8, and well formed.
fn is_json(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let upstream = UPSTREAMS[usize::from(selector) % UPSTREAMS.len()];
    let (headers, body) = headers_and_body(rest);

    let from_headers = ServedIdentity::from_headers(upstream, &headers);
    let identity = identity_from_response(upstream, &headers, body);
    if let Some(model) = &identity.model {
        assert!(
            !model.trim().is_empty(),
            "an empty model is not a disclosure"
        );
    }
    if from_headers.source == Some(IdentitySource::Header) {
        assert_eq!(
            identity.model, from_headers.model,
            "a served-model header wins"
        );
    }
    for expected in ["gpt-4o-2024-08-06", "claude-*", ""] {
        let _ = classify(expected, "gpt-4o", &identity);
    }

    // JSON as RFC 8259 has it (UTF-8, any number): `1e999` is JSON that `Value` refuses.
    let rewritten = rewrite_served_model(body, "v1");
    if is_json(body) {
        assert!(is_json(&rewritten), "the rewrite broke a JSON body");
        if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
            let value = serde_json::from_slice::<serde_json::Value>(&rewritten);
            assert!(value.is_ok(), "the rewrite broke a JSON body");
        }
    } else {
        assert_eq!(rewritten, body, "a body that is not JSON passes unchanged");
    }
});
