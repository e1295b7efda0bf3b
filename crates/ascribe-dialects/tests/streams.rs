//! Stream fixtures: the outcome each one must give, whole and split at every byte, and the
//! event at which the identity becomes ready.

mod common;

use ascribe_dialects::{Api, IdentitySource, StreamObserver, StreamOutcome, Upstream};
use common::{fixture, headers, observe};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One stream fixture and the endpoint and upstream it answers.
struct Case {
    file: &'static str,
    api: Api,
    upstream: Upstream,
    headers_file: Option<&'static str>,
}

const fn case(file: &'static str, api: Api, upstream: Upstream) -> Case {
    Case {
        file,
        api,
        upstream,
        headers_file: None,
    }
}

const CHAT: Api = Api::ChatCompletions;
const COMPATIBLE: Upstream = Upstream::OpenaiCompatible;

const AZURE: Case = case("azure-openai-chat-stream.sse", CHAT, Upstream::AzureOpenai);

const CASES: &[Case] = &[
    case("openai-chat-stream.sse", CHAT, Upstream::Openai),
    case(
        "openai-responses-stream.sse",
        Api::Responses,
        Upstream::Openai,
    ),
    case(
        "openai-responses-stream-failed.sse",
        Api::Responses,
        Upstream::Openai,
    ),
    Case {
        headers_file: Some("azure-openai-headers.json"),
        ..AZURE
    },
    case(
        "anthropic-messages-stream.sse",
        Api::Messages,
        Upstream::Anthropic,
    ),
    case(
        "anthropic-messages-stream-error.sse",
        Api::Messages,
        Upstream::Anthropic,
    ),
    case("vllm-chat-stream.sse", CHAT, COMPATIBLE),
    case("llamacpp-chat-stream.sse", CHAT, COMPATIBLE),
    case("tgi-chat-stream.sse", CHAT, COMPATIBLE),
    case("mistral-chat-stream.sse", CHAT, COMPATIBLE),
    case("deepseek-chat-stream.sse", CHAT, COMPATIBLE),
    case("groq-chat-stream.sse", CHAT, COMPATIBLE),
    case("openrouter-chat-stream.sse", CHAT, COMPATIBLE),
    case("openrouter-chat-stream-error.sse", CHAT, COMPATIBLE),
    case("together-chat-stream.sse", CHAT, COMPATIBLE),
    case("gemini-stream.sse", CHAT, COMPATIBLE),
];

fn find(file: &str) -> &'static Case {
    CASES
        .iter()
        .find(|case| case.file == file)
        .expect("a listed fixture")
}

fn case_headers(case: &Case) -> Vec<(String, String)> {
    case.headers_file.map(headers).unwrap_or_default()
}

fn whole(case: &Case) -> StreamOutcome {
    observe(
        case.api,
        case.upstream,
        &case_headers(case),
        &[&fixture(case.file)],
    )
}

/// What a fixture's outcome must be; `None` fields are not checked.
#[derive(Default)]
struct Expected {
    model: Option<&'static str>,
    fingerprint: Option<&'static str>,
    response_id: Option<&'static str>,
    finish_reason: Option<&'static str>,
    completed: bool,
    error: Option<&'static str>,
    total_tokens: Option<u64>,
}

fn check(file: &str, expected: Expected) -> StreamOutcome {
    let outcome = whole(find(file));
    let identity = &outcome.identity;
    assert_eq!(identity.model.as_deref(), expected.model, "{file}: model");
    assert_eq!(
        identity.system_fingerprint.as_deref(),
        expected.fingerprint,
        "{file}: fp"
    );
    assert_eq!(
        identity.response_id.as_deref(),
        expected.response_id,
        "{file}: id"
    );
    assert_eq!(
        outcome.finish_reason.as_deref(),
        expected.finish_reason,
        "{file}: finish"
    );
    assert_eq!(outcome.completed, expected.completed, "{file}: completed");
    assert_eq!(outcome.error.as_deref(), expected.error, "{file}: error");
    assert_eq!(
        total_tokens(&outcome),
        expected.total_tokens,
        "{file}: usage"
    );
    if expected.model.is_some() {
        assert_eq!(
            identity.source,
            Some(IdentitySource::Stream),
            "{file}: source"
        );
    }
    outcome
}

fn total_tokens(outcome: &StreamOutcome) -> Option<u64> {
    let usage = outcome.usage.as_ref()?;
    let total = usage.get("total_tokens").and_then(Value::as_u64);
    total.or_else(|| {
        let input = usage.get("input_tokens")?.as_u64()?;
        Some(input + usage.get("output_tokens")?.as_u64()?)
    })
}

#[test]
fn openai_chat_stream_with_usage() {
    let outcome = check(
        "openai-chat-stream.sse",
        Expected {
            model: Some("gpt-4o-mini-2024-07-18"),
            fingerprint: Some("fp_d0469e1700"),
            response_id: Some("chatcmpl-Dx0XqEXAMPLEddddddddddddddddd"),
            finish_reason: Some("stop"),
            completed: true,
            total_tokens: Some(68),
            ..Expected::default()
        },
    );
    let bytes = fixture("openai-chat-stream.sse");
    assert_eq!(outcome.n_bytes, bytes.len() as u64);
    assert_eq!(outcome.body_sha256, hex::encode(Sha256::digest(&bytes)));
    assert!(!outcome.identity.raw.contains_key("obfuscation"));
}

#[test]
fn responses_stream_reads_the_envelopes() {
    let outcome = check(
        "openai-responses-stream.sse",
        Expected {
            model: Some("gpt-4.1-2025-04-14"),
            response_id: Some("resp_01EXAMPLE000000000000000000000000000000000000000"),
            finish_reason: Some("completed"),
            completed: true,
            total_tokens: Some(14),
            ..Expected::default()
        },
    );
    // The tier of the terminal event, not the echo in `response.created`.
    assert_eq!(
        outcome.identity.raw.get("service_tier"),
        Some(&json!("default"))
    );
}

#[test]
fn responses_failed_is_an_error_under_200() {
    check(
        "openai-responses-stream-failed.sse",
        Expected {
            model: Some("<resolved-model-id>"),
            response_id: Some("resp_0632EXAMPLE00000000000000000000000000000000000"),
            finish_reason: Some("failed"),
            error: Some(
                "server_error: An error occurred while processing your request. You can retry \
                 your request, or contact us through our help center at help.openai.com if the \
                 error persists. Please include the request ID \
                 05db48fb-0000-0000-0000-000000000000 in your message.",
            ),
            ..Expected::default()
        },
    );
}

#[test]
fn azure_stream_skips_the_empty_prompt_filter_chunk() {
    let outcome = check(
        "azure-openai-chat-stream.sse",
        Expected {
            model: Some("gpt-4o-2024-08-06"),
            fingerprint: Some("fp_ee1d74bde0"),
            response_id: Some("chatcmpl-BleatEXAMPLEeeeeeeeeeeeeeeeeee"),
            finish_reason: Some("stop"),
            completed: true,
            ..Expected::default()
        },
    );
    let headers = &outcome.identity.headers;
    assert_eq!(
        headers.get("x-ms-deployment-name").map(String::as_str),
        Some("gpt-4o")
    );
}

#[test]
fn anthropic_stream_names_the_model_in_message_start_only() {
    let outcome = check(
        "anthropic-messages-stream.sse",
        Expected {
            model: Some("claude-sonnet-4-5-20250929"),
            response_id: Some("msg_018E1hg8EXAMPLEdddddddd"),
            finish_reason: Some("end_turn"),
            completed: true,
            total_tokens: Some(25),
            ..Expected::default()
        },
    );
    let usage = outcome.usage.expect("usage");
    assert_eq!(usage["service_tier"], "standard");
    assert_eq!(usage["output_tokens"], 5);
}

#[test]
fn anthropic_error_event_ends_the_stream_without_message_stop() {
    check(
        "anthropic-messages-stream-error.sse",
        Expected {
            model: Some("claude-sonnet-4-5-20250929"),
            response_id: Some("msg_018E1hg8EXAMPLEdddddddd"),
            error: Some("overloaded_error: Overloaded"),
            total_tokens: Some(21),
            ..Expected::default()
        },
    );
}

#[test]
fn vllm_fingerprint_arrives_only_on_the_final_usage_chunk() {
    let bytes = fixture("vllm-chat-stream.sse");
    let first_event_end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("an event")
        + 2;
    let mut observer = StreamObserver::new(CHAT, COMPATIBLE, &[]);
    observer.feed(&bytes[..first_event_end]);
    assert!(observer.identity_ready());
    assert_eq!(observer.identity().model.as_deref(), Some("qwen"));
    assert_eq!(observer.identity().system_fingerprint, None);

    check(
        "vllm-chat-stream.sse",
        Expected {
            model: Some("qwen"),
            fingerprint: Some("vllm-0.23.0-tp2-39ad13f9"),
            response_id: Some("chatcmpl-5c3e9b1d2a7f4e60"),
            finish_reason: Some("stop"),
            completed: true,
            total_tokens: Some(49),
            ..Expected::default()
        },
    );
}

#[test]
fn self_hosted_and_compatible_streams() {
    let llamacpp = Expected {
        model: Some("gemma-4-E2B-it-Q4_K_M.gguf"),
        fingerprint: Some("b9020-a4701c98f"),
        response_id: Some("chatcmpl-yQMMAFznEXAMPLEcccccccccccccccccc"),
        total_tokens: Some(101),
        ..stopped()
    };
    check("llamacpp-chat-stream.sse", llamacpp);
    let tgi = Expected {
        model: Some("meta-llama/Meta-Llama-Guard-2-8B"),
        fingerprint: Some("2.4.0-sha-0a655a0-intel-cpu"),
        total_tokens: Some(22),
        ..stopped()
    };
    check("tgi-chat-stream.sse", tgi);
    let mistral = Expected {
        model: Some("magistral-medium-latest"),
        response_id: Some("9f9d90210f194076EXAMPLE000000000"),
        total_tokens: Some(242),
        ..stopped()
    };
    check("mistral-chat-stream.sse", mistral);
    let together = Expected {
        model: Some("deepseek-ai/DeepSeek-R1"),
        response_id: Some("oV1nHvx-28Eivz-EXAMPLE0000000"),
        total_tokens: Some(965),
        ..stopped()
    };
    check("together-chat-stream.sse", together);
}

#[test]
fn hosted_compatible_streams() {
    let deepseek = Expected {
        model: Some("deepseek-reasoner"),
        fingerprint: Some("fp_393bca965e_prod0623_fp8_kvcache"),
        response_id: Some("33be18fc-0000-486c-8c29-EXAMPLE00000"),
        total_tokens: Some(218),
        ..stopped()
    };
    check("deepseek-chat-stream.sse", deepseek);
    // Groq's legacy usage placement: `x_groq.usage` on the last chunk.
    let groq = Expected {
        model: Some("deepseek-r1-distill-llama-70b"),
        fingerprint: Some("fp_448a0d11e0"),
        response_id: Some("chatcmpl-4ef92b12-fb9d-486f-8b98-EXAMPLE00000"),
        total_tokens: Some(1009),
        ..stopped()
    };
    check("groq-chat-stream.sse", groq);
    let openrouter = Expected {
        model: Some("openai/o3"),
        response_id: Some("gen-1762141316-EXAMPLEcccccccccccc"),
        total_tokens: Some(113),
        ..stopped()
    };
    let outcome = check("openrouter-chat-stream.sse", openrouter);
    assert_eq!(outcome.identity.raw.get("provider"), Some(&json!("OpenAI")));
}

#[test]
fn openrouter_error_chunk_is_an_error_under_200() {
    check(
        "openrouter-chat-stream-error.sse",
        Expected {
            model: Some("minimax/minimax-m2:free"),
            response_id: Some("gen-1762179802-EXAMPLEdddddddddddd"),
            finish_reason: Some("length"),
            completed: true,
            error: Some("400: Token limit reached"),
            total_tokens: Some(53),
            ..Expected::default()
        },
    );
}

#[test]
fn gemini_stream_has_no_done_and_no_model_field() {
    let gemini = Expected {
        model: Some("gemini-2.0-flash-exp"),
        response_id: Some("w1peaEXAMPLEccccccccccc"),
        ..Expected::default()
    };
    let outcome = check("gemini-stream.sse", gemini);
    assert_eq!(
        outcome.identity.model_version.as_deref(),
        Some("gemini-2.0-flash-exp")
    );
}

fn stopped() -> Expected {
    Expected {
        finish_reason: Some("stop"),
        completed: true,
        ..Expected::default()
    }
}

/// The first event (0-based, counting blank-line-separated blocks) after which the identity
/// is ready.
fn ready_after(case: &Case) -> Option<usize> {
    let bytes = fixture(case.file);
    let text = String::from_utf8(bytes).expect("utf-8 fixture");
    let mut observer = StreamObserver::new(case.api, case.upstream, &case_headers(case));
    for (idx, block) in text.split_inclusive("\n\n").enumerate() {
        observer.feed(block.as_bytes());
        if observer.identity_ready() {
            return Some(idx);
        }
    }
    None
}

#[test]
fn identity_is_ready_at_the_first_event_that_names_the_model() {
    let expected = [
        ("openai-chat-stream.sse", 0),
        ("openai-responses-stream.sse", 0),
        // The prompt-filter chunk first, with `model: ""`.
        ("azure-openai-chat-stream.sse", 1),
        ("anthropic-messages-stream.sse", 0),
        ("vllm-chat-stream.sse", 0),
        // Two `: OPENROUTER PROCESSING` comments first.
        ("openrouter-chat-stream.sse", 2),
    ];
    for (file, event) in expected {
        assert_eq!(ready_after(find(file)), Some(event), "{file}");
    }
}

#[test]
fn identity_is_ready_when_a_stream_ends_without_naming_a_model() {
    let mut observer = StreamObserver::new(Api::Messages, Upstream::Anthropic, &[]);
    observer.feed(b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    assert!(!observer.identity_ready());
    observer.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"");
    assert!(!observer.identity_ready());
    observer.feed(b",\"message\":\"Internal server error\"}}\n\n");
    assert!(observer.identity_ready());
    assert_eq!(observer.identity().model, None);

    let mut chat = StreamObserver::new(CHAT, COMPATIBLE, &[]);
    chat.feed(b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n");
    assert!(chat.identity_ready());
    let outcome = chat.finish();
    assert!(outcome.completed);
    assert_eq!(outcome.identity.model, None);
}

#[test]
fn a_cut_stream_is_not_completed() {
    let bytes = fixture("openai-chat-stream.sse");
    let cut = bytes.len() / 2;
    let outcome = observe(CHAT, Upstream::Openai, &[], &[&bytes[..cut]]);
    assert!(!outcome.completed);
    assert_eq!(
        outcome.identity.model.as_deref(),
        Some("gpt-4o-mini-2024-07-18")
    );
    assert_eq!(outcome.n_bytes, cut as u64);
}

/// The outcome without the fields that depend on the exact bytes.
fn meaning(mut outcome: StreamOutcome) -> StreamOutcome {
    outcome.body_sha256.clear();
    outcome.n_bytes = 0;
    outcome
}

#[test]
fn every_two_way_split_gives_the_same_outcome() {
    for case in CASES {
        let bytes = fixture(case.file);
        let headers = case_headers(case);
        let expected = whole(case);
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            let outcome = observe(case.api, case.upstream, &headers, &[head, tail]);
            assert_eq!(outcome, expected, "{} split at {cut}", case.file);
        }
    }
}

#[test]
fn byte_at_a_time_gives_the_same_outcome() {
    for case in CASES {
        let bytes = fixture(case.file);
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        let outcome = observe(case.api, case.upstream, &case_headers(case), &pieces);
        assert_eq!(outcome, whole(case), "{}", case.file);
    }
}

#[test]
fn crlf_and_lone_cr_line_endings_give_the_same_meaning() {
    for case in CASES {
        let text = String::from_utf8(fixture(case.file)).expect("utf-8 fixture");
        let expected = meaning(whole(case));
        for ending in ["\r\n", "\r"] {
            let bytes = text.replace('\n', ending).into_bytes();
            for cut in 0..=bytes.len() {
                let (head, tail) = bytes.split_at(cut);
                let outcome = observe(case.api, case.upstream, &case_headers(case), &[head, tail]);
                assert_eq!(
                    meaning(outcome),
                    expected,
                    "{} {ending:?} at {cut}",
                    case.file
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn random_splits_give_the_same_outcome(
        case_idx in 0..CASES.len(),
        mut cuts in proptest::collection::vec(0usize..4000, 0..12),
    ) {
        let case = &CASES[case_idx];
        let bytes = fixture(case.file);
        cuts.iter_mut().for_each(|cut| *cut %= bytes.len() + 1);
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts {
            pieces.push(&bytes[start..cut]);
            start = cut;
        }
        pieces.push(&bytes[start..]);
        let outcome = observe(case.api, case.upstream, &case_headers(case), &pieces);
        prop_assert_eq!(outcome, whole(case));
    }
}

#[test]
fn responses_error_events_without_details_still_fail() {
    let failed =
        b"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{}}\n\n";
    let outcome = observe(Api::Responses, Upstream::Openai, &[], &[failed]);
    assert_eq!(outcome.error.as_deref(), Some("response.failed"));

    let error = br#"data: {"type":"error","code":"rate_limit_exceeded","message":"slow down"}"#;
    let outcome = observe(Api::Responses, Upstream::Openai, &[], &[error]);
    assert_eq!(
        outcome.error.as_deref(),
        Some("rate_limit_exceeded: slow down")
    );
    assert!(!outcome.completed);
}
