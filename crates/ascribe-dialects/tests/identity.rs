//! Served identity of whole responses, one test per provider shape, and how each classifies.

mod common;

use ascribe_dialects::{
    classify, identity_from_response, IdentityMatch, IdentitySource, MismatchKind, ServedIdentity,
    Upstream,
};
use common::{fixture, headers};
use serde_json::Value;

/// What a fixture's identity must be.
#[derive(Default)]
struct Expected {
    model: Option<&'static str>,
    fingerprint: Option<&'static str>,
    response_id: Option<&'static str>,
    source: Option<IdentitySource>,
}

fn check(upstream: Upstream, headers_file: Option<&str>, body_file: &str, expected: Expected) {
    let identity = read(upstream, headers_file, body_file);
    assert_eq!(
        identity.model.as_deref(),
        expected.model,
        "{body_file}: model"
    );
    assert_eq!(
        identity.system_fingerprint.as_deref(),
        expected.fingerprint,
        "{body_file}: fp"
    );
    assert_eq!(
        identity.response_id.as_deref(),
        expected.response_id,
        "{body_file}: id"
    );
    assert_eq!(identity.source, expected.source, "{body_file}: source");
}

fn read(upstream: Upstream, headers_file: Option<&str>, body_file: &str) -> ServedIdentity {
    let headers = headers_file.map(headers).unwrap_or_default();
    identity_from_response(upstream, &headers, &fixture(body_file))
}

fn body(model: &'static str, fingerprint: Option<&'static str>, id: &'static str) -> Expected {
    let source = Some(IdentitySource::Body);
    Expected {
        model: Some(model),
        fingerprint,
        response_id: Some(id),
        source,
    }
}

const BODY: Option<IdentitySource> = Some(IdentitySource::Body);

#[test]
fn openai_chat_resolves_the_alias_to_a_snapshot() {
    let id = "chatcmpl-BJjf6EXAMPLEaaaaaaaaaaaaaaaa";
    let expected = body("gpt-4o-2024-08-06", Some("fp_898ac29719"), id);
    check(Upstream::Openai, None, "openai-chat.json", expected);

    let identity = read(Upstream::Openai, None, "openai-chat.json");
    assert_eq!(
        identity.raw.get("service_tier"),
        Some(&Value::from("default"))
    );
    assert_eq!(
        classify("gpt-4o-2024-08-06", "gpt-4o-2024-08-06", &identity),
        IdentityMatch::Match
    );
    assert_eq!(
        classify("gpt-4o-2024-11-20", "gpt-4o-2024-11-20", &identity),
        IdentityMatch::Mismatch(MismatchKind::NewerSnapshot)
    );
    assert_eq!(
        classify("gpt-4o-mini-*", "gpt-4o-mini-2024-07-18", &identity),
        IdentityMatch::Mismatch(MismatchKind::DifferentModel)
    );
}

#[test]
fn openai_model_header_beats_the_body() {
    let identity = read(
        Upstream::Openai,
        Some("openai-headers.json"),
        "openai-chat.json",
    );
    assert_eq!(identity.model.as_deref(), Some("gpt-3.5-turbo-0301"));
    assert_eq!(identity.source, Some(IdentitySource::Header));
    // The body's own word stays in the raw record.
    assert_eq!(
        identity.raw.get("model"),
        Some(&Value::from("gpt-4o-2024-08-06"))
    );
    let kept: Vec<&str> = identity.headers.keys().map(String::as_str).collect();
    assert_eq!(kept, ["openai-model", "x-request-id"]);
}

#[test]
fn gpt5_null_fingerprint_is_undisclosed_but_recorded_raw() {
    let expected = Expected {
        model: Some("gpt-5-mini-2025-08-07"),
        source: BODY,
        ..Expected::default()
    };
    let expected = Expected {
        response_id: Some("chatcmpl-CEXAMPLEbbbbbbbbbbbbbbbbbbbbbbb"),
        ..expected
    };
    check(Upstream::Openai, None, "openai-chat-gpt5.json", expected);
    let identity = read(Upstream::Openai, None, "openai-chat-gpt5.json");
    assert_eq!(identity.raw.get("system_fingerprint"), Some(&Value::Null));
}

#[test]
fn openai_responses_has_no_fingerprint_field() {
    let id = "resp_68c2e8c1EXAMPLE0000000000000000000000000000000000";
    check(
        Upstream::Openai,
        None,
        "openai-responses.json",
        body("gpt-4o-2024-08-06", None, id),
    );
    let identity = read(Upstream::Openai, None, "openai-responses.json");
    assert!(!identity.raw.contains_key("system_fingerprint"));
}

#[test]
fn azure_deployment_header_is_kept_but_is_not_the_model() {
    let id = "chatcmpl-BAeyREXAMPLEcccccccccccccccccc";
    let expected = body("gpt-4o-2024-11-20", Some("fp_ded0d14823"), id);
    let azure_headers = Some("azure-openai-headers.json");
    check(
        Upstream::AzureOpenai,
        azure_headers,
        "azure-openai-chat.json",
        expected,
    );

    let identity = read(
        Upstream::AzureOpenai,
        azure_headers,
        "azure-openai-chat.json",
    );
    let header = |name: &str| identity.headers.get(name).map(String::as_str);
    assert_eq!(header("x-ms-deployment-name"), Some("gpt-4o"));
    assert_eq!(header("x-ms-region"), Some("East US 2"));
    assert_eq!(
        header("azureml-model-session"),
        Some("v20250225-1-161802030")
    );
    assert_eq!(
        header("apim-request-id"),
        Some("1d93fae1-0000-0000-0000-000000000000")
    );
    assert_eq!(header("x-ratelimit-limit-tokens"), None);
    assert_eq!(
        classify("gpt-4o-2024-11-20", "gpt-4o", &identity),
        IdentityMatch::Match
    );
}

#[test]
fn anthropic_messages_resolve_dated_families() {
    let expected = body(
        "claude-sonnet-4-5-20250929",
        None,
        "msg_01Fg1JVgEXAMPLEaaaaaaaa",
    );
    let anthropic_headers = Some("anthropic-headers.json");
    check(
        Upstream::Anthropic,
        anthropic_headers,
        "anthropic-messages.json",
        expected,
    );

    let identity = read(
        Upstream::Anthropic,
        anthropic_headers,
        "anthropic-messages.json",
    );
    let kept: Vec<&str> = identity.headers.keys().map(String::as_str).collect();
    assert_eq!(kept, ["request-id"]);
    let expected = "claude-sonnet-4-5-20250929";
    assert_eq!(
        classify(expected, "claude-sonnet-4-5", &identity),
        IdentityMatch::Match
    );
}

#[test]
fn anthropic_error_bodies_disclose_nothing() {
    for file in ["anthropic-error-404-model.json", "anthropic-error-429.json"] {
        check(Upstream::Anthropic, None, file, Expected::default());
    }
    let identity = read(Upstream::Anthropic, None, "anthropic-error-529.json");
    assert_eq!(identity, ServedIdentity::default());
    assert_eq!(
        classify("claude-*", "claude-sonnet-4-5", &identity),
        IdentityMatch::Undisclosed
    );
}

#[test]
fn vllm_model_is_the_operator_label() {
    let id = "chatcmpl-89cf9de14d6fdfd2";
    let compatible = Upstream::OpenaiCompatible;
    check(
        compatible,
        None,
        "vllm-chat.json",
        body("qwen", Some("vllm-0.21.0-2426ae93"), id),
    );

    let identity = read(compatible, None, "vllm-chat.json");
    assert_eq!(classify("qwen", "qwen", &identity), IdentityMatch::Match);
    // The label echoes what was asked; it says nothing about the weights behind it.
    let weights = "Qwen/Qwen2.5-7B-Instruct";
    assert_eq!(
        classify(weights, "qwen", &identity),
        IdentityMatch::Undisclosed
    );
}

#[test]
fn vllm_legacy_fingerprint_is_null() {
    let id = "chatcmpl-4eb85db2ff834efbEXAMPLE0000000";
    let expected = body("Qwen/Qwen3-VL-8B-Instruct", None, id);
    check(
        Upstream::OpenaiCompatible,
        None,
        "vllm-chat-legacy.json",
        expected,
    );
}

#[test]
fn llamacpp_reports_the_gguf_file_and_build() {
    let id = "chatcmpl-hlfAk74yEXAMPLEaaaaaaaaaaaaaaaaa";
    let expected = body(
        "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
        Some("b9436-d6588daa8"),
        id,
    );
    check(
        Upstream::OpenaiCompatible,
        None,
        "llamacpp-chat.json",
        expected,
    );
}

#[test]
fn llamacpp_legacy_echo_is_undisclosed() {
    let id = "chatcmpl-PLT9wXbZEXAMPLEbbbbbbbbbbbbbbbbb";
    let expected = body("gpt-3.5-turbo", Some("b1-6a746cf"), id);
    check(
        Upstream::OpenaiCompatible,
        None,
        "llamacpp-chat-legacy.json",
        expected,
    );
    let identity = read(
        Upstream::OpenaiCompatible,
        None,
        "llamacpp-chat-legacy.json",
    );
    assert_eq!(
        classify("smollm2", "gpt-3.5-turbo", &identity),
        IdentityMatch::Undisclosed
    );
}

#[test]
fn llama_cpp_python_echoes_whatever_was_asked() {
    let file = "llama-cpp-python-0.3.36-chat.json";
    let id = "chatcmpl-97a61538-e758-4948-b049-c93e32f19973";
    check(
        Upstream::OpenaiCompatible,
        None,
        file,
        body("whatever", None, id),
    );
    let identity = read(Upstream::OpenaiCompatible, None, file);
    assert!(!identity.raw.contains_key("system_fingerprint"));
    assert_eq!(
        classify("smollm2", "whatever", &identity),
        IdentityMatch::Undisclosed
    );
}

#[test]
fn tgi_echo_is_undisclosed_and_empty_id_is_not_an_id() {
    let model = "meta-llama/Llama-3.1-405B-Instruct-FP8";
    let expected = Expected {
        model: Some(model),
        fingerprint: Some("2.2.0-native"),
        source: BODY,
        response_id: None,
    };
    check(
        Upstream::OpenaiCompatible,
        Some("tgi-headers.json"),
        "tgi-chat.json",
        expected,
    );

    let identity = read(
        Upstream::OpenaiCompatible,
        Some("tgi-headers.json"),
        "tgi-chat.json",
    );
    assert_eq!(identity.raw.get("id"), Some(&Value::from("")));
    assert_eq!(
        identity.headers.get("x-compute-type").map(String::as_str),
        Some("1-nvidia-a10g")
    );
    let weights = "meta-llama/Meta-Llama-3.1-8B-Instruct";
    assert_eq!(
        classify(weights, model, &identity),
        IdentityMatch::Undisclosed
    );
}

#[test]
fn ollama_openai_endpoint_has_a_constant_fingerprint() {
    let expected = body("qwen3:0.6b", Some("fp_ollama"), "chatcmpl-150");
    check(
        Upstream::OpenaiCompatible,
        None,
        "ollama-openai-chat.json",
        expected,
    );
}

#[test]
fn mistral_latest_echo_is_undisclosed() {
    let id = "74b5a04853d2428fEXAMPLE0000000000";
    check(
        Upstream::OpenaiCompatible,
        None,
        "mistral-chat.json",
        body("mistral-large-latest", None, id),
    );
    let identity = read(Upstream::OpenaiCompatible, None, "mistral-chat.json");
    let requested = "mistral-large-latest";
    assert_eq!(
        classify("mistral-large-2411", requested, &identity),
        IdentityMatch::Undisclosed
    );
    assert_eq!(
        classify("mistral-large-latest", requested, &identity),
        IdentityMatch::Match
    );
}

#[test]
fn deepseek_fingerprint_encodes_the_build() {
    let expected = body(
        "deepseek-reasoner",
        Some("fp_5417b77867_prod0225"),
        "<uuid>",
    );
    check(
        Upstream::OpenaiCompatible,
        None,
        "deepseek-chat.json",
        expected,
    );
}

#[test]
fn deepseek_remapped_legacy_name_is_a_different_model() {
    // The 2026 answer to `deepseek-reasoner` (described in the shared README, not a file).
    let remapped = br#"{"id":"x","model":"deepseek-v4-flash","system_fingerprint":null}"#;
    let identity = identity_from_response(Upstream::OpenaiCompatible, &[], remapped);
    assert_eq!(
        classify("deepseek-reasoner", "deepseek-reasoner", &identity),
        IdentityMatch::Mismatch(MismatchKind::DifferentModel)
    );
}

#[test]
fn groq_echoes_and_compound_lists_its_models() {
    let id = "chatcmpl-7586b6a9-fb4b-4ec7-86a0-EXAMPLE00000";
    let expected = body("llama-3.3-70b-versatile", Some("fp_72a5dc99ee"), id);
    check(Upstream::OpenaiCompatible, None, "groq-chat.json", expected);
    assert!(read(Upstream::OpenaiCompatible, None, "groq-chat.json")
        .secondary_models
        .is_empty());

    let compound = read(Upstream::OpenaiCompatible, None, "groq-compound.json");
    assert_eq!(compound.model.as_deref(), Some("groq/compound"));
    let secondary = [
        "llama-3.3-70b-versatile",
        "meta-llama/llama-4-scout-17b-16e-instruct",
    ];
    assert_eq!(compound.secondary_models, secondary);
}

#[test]
fn openrouter_names_the_served_slug_and_provider() {
    let id = "gen-1779496002-EXAMPLEaaaaaaaaaaaa";
    let expected = body("anthropic/claude-4.5-sonnet-20250929", None, id);
    check(
        Upstream::OpenaiCompatible,
        None,
        "openrouter-chat.json",
        expected,
    );
    let identity = read(Upstream::OpenaiCompatible, None, "openrouter-chat.json");
    assert_eq!(
        identity.raw.get("provider"),
        Some(&Value::from("Amazon Bedrock"))
    );
    assert_eq!(identity.raw.get("system_fingerprint"), Some(&Value::Null));
}

#[test]
fn together_and_cerebras() {
    let id = "oV1mmQk-28Eivz-EXAMPLE0000000";
    check(
        Upstream::OpenaiCompatible,
        None,
        "together-chat.json",
        body("deepseek-ai/DeepSeek-R1", None, id),
    );
    let id = "chatcmpl-175bff47-ce89-4fad-bead-EXAMPLE00000";
    let expected = body("llama-3.3-70b", Some("fp_b6a51bb1d26f03ea3772"), id);
    check(
        Upstream::OpenaiCompatible,
        None,
        "cerebras-chat.json",
        expected,
    );
}

#[test]
fn gemini_model_version_and_response_id() {
    let expected = body("gemini-2.0-flash", None, "41peaEXAMPLEaaaaaaaaaaa");
    check(
        Upstream::OpenaiCompatible,
        None,
        "gemini-generatecontent.json",
        expected,
    );
    let identity = read(
        Upstream::OpenaiCompatible,
        None,
        "gemini-generatecontent.json",
    );
    assert_eq!(identity.model_version.as_deref(), Some("gemini-2.0-flash"));
}

#[test]
fn a_body_that_is_not_json_leaves_only_headers() {
    let headers = [("X-Request-Id".to_owned(), " req_1 ".to_owned())];
    let identity = identity_from_response(Upstream::Openai, &headers, b"<html>bad gateway</html>");
    assert_eq!(identity.model, None);
    assert_eq!(identity.source, None);
    assert_eq!(
        identity.headers.get("x-request-id").map(String::as_str),
        Some("req_1")
    );
}

#[test]
fn served_identity_serialises_for_the_ledger() {
    let identity = read(Upstream::Openai, None, "openai-chat.json");
    let value = serde_json::to_value(&identity).expect("serialisable");
    assert_eq!(value["source"], "body");
    assert_eq!(value["model"], "gpt-4o-2024-08-06");
    let back: ServedIdentity = serde_json::from_value(value).expect("round trip");
    assert_eq!(back, identity);
}
