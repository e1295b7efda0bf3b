//! Handing the requested name back in place of the served model.

mod common;

use ascribe_dialects::{
    rewrite_served_model, rewrite_served_model_in_event, Api, ServedModelRewriter,
};
use common::fixture;

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn whole_bodies_change_only_the_model() {
    let cases = [
        ("openai-chat.json", "gpt-4o-2024-08-06"),
        ("openai-responses.json", "gpt-4o-2024-08-06"),
        ("anthropic-messages.json", "claude-sonnet-4-5-20250929"),
        ("azure-openai-chat.json", "gpt-4o-2024-11-20"),
        ("tgi-chat.json", "meta-llama/Llama-3.1-405B-Instruct-FP8"),
    ];
    for (file, served) in cases {
        let original = text(fixture(file));
        let expected = original.replace(&format!("\"{served}\""), "\"risk-scoring-prod\"");
        assert_eq!(
            text(rewrite_served_model(
                original.as_bytes(),
                "risk-scoring-prod"
            )),
            expected
        );
    }
}

#[test]
fn undisclosed_and_non_json_pass_unchanged() {
    let cases: [&[u8]; 5] = [
        br#"{"model":null,"id":"x"}"#,
        br#"{"model":"","id":"x"}"#,
        br#"{"id":"x","nested":{"model":"m"}}"#,
        b"not json {\"model\":\"m\"}",
        br#"{"model":"m""#,
    ];
    for body in cases {
        assert_eq!(rewrite_served_model(body, "v1"), body);
    }
    assert_eq!(
        rewrite_served_model(br#"{"model":"m"}"#, "a\"b"),
        br#"{"model":"a\"b"}"#
    );
}

#[test]
fn events_are_rewritten_at_each_dialect_path() {
    let start = br#"{"type":"message_start","message":{"model":"claude-x","id":"m"}   }"#;
    let rewritten = rewrite_served_model_in_event(Api::Messages, start, "v1");
    assert_eq!(
        rewritten,
        br#"{"type":"message_start","message":{"model":"v1","id":"m"}   }"#
    );
    let created = br#"{"type":"response.created","response":{"model":"gpt-4.1"}}"#;
    let rewritten = rewrite_served_model_in_event(Api::Responses, created, "v1");
    assert_eq!(
        rewritten,
        br#"{"type":"response.created","response":{"model":"v1"}}"#
    );
    assert_eq!(
        rewrite_served_model_in_event(Api::ChatCompletions, b" [DONE]", "v1"),
        b" [DONE]"
    );
}

fn rewrite_stream(api: Api, pieces: &[&[u8]]) -> String {
    let mut rewriter = ServedModelRewriter::new(api, "v1");
    let mut out: Vec<u8> = pieces
        .iter()
        .flat_map(|piece| rewriter.feed(piece))
        .collect();
    out.extend(rewriter.finish());
    text(out)
}

#[test]
fn streams_change_only_the_model_however_they_are_split() {
    let cases = [
        (
            "openai-chat-stream.sse",
            Api::ChatCompletions,
            "gpt-4o-mini-2024-07-18",
        ),
        (
            "azure-openai-chat-stream.sse",
            Api::ChatCompletions,
            "gpt-4o-2024-08-06",
        ),
        (
            "openai-responses-stream.sse",
            Api::Responses,
            "gpt-4.1-2025-04-14",
        ),
        (
            "anthropic-messages-stream.sse",
            Api::Messages,
            "claude-sonnet-4-5-20250929",
        ),
        (
            "openrouter-chat-stream.sse",
            Api::ChatCompletions,
            "openai/o3",
        ),
    ];
    for (file, api, served) in cases {
        let original = fixture(file);
        let expected = text(original.clone()).replace(&format!("\"{served}\""), "\"v1\"");
        assert_ne!(expected.as_bytes(), original, "{file}");
        for cut in 0..=original.len() {
            let (head, tail) = original.split_at(cut);
            assert_eq!(
                rewrite_stream(api, &[head, tail]),
                expected,
                "{file} at {cut}"
            );
        }
        let crlf = text(original).replace('\n', "\r\n");
        let rewritten = rewrite_stream(api, &[crlf.as_bytes()]);
        assert_eq!(
            rewritten,
            expected.replace('\n', "\r\n"),
            "{file} with crlf"
        );
    }
}
