//! The served identity: what a response says was served, read from headers and body.
//!
//! The rules, in order of strength:
//!
//! 1. A served-model response header where the provider sends one beats the body. Only
//!    OpenAI's `openai-model` is such a header (seen on `/v1/embeddings` and, in 2023, on chat
//!    completions); it is read for `openai` and `openai-compatible` upstreams. Azure's
//!    `x-ms-deployment-name` names a deployment, not a model: it is kept in
//!    [`ServedIdentity::headers`] only.
//! 2. Else the body (or, for streams, the events that carry it): `model`, else Gemini-style
//!    `modelVersion` with its `models/` prefix removed.
//! 3. `null`, `""` (or only spaces) and absent all mean "not disclosed", and a value that
//!    does not disclose never erases one that did. A later disclosed value replaces an earlier
//!    one, so a stream's last word counts (Responses' `service_tier`, vLLM's fingerprint).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Upstream;

/// Response headers that bear on identity, kept raw when present and not empty.
///
/// Request ids are among them: they are how a provider finds the call again.
pub const IDENTITY_HEADERS: &[&str] = &[
    "openai-model",
    "x-request-id",
    "request-id",
    "apim-request-id",
    "x-ms-deployment-name",
    "x-ms-region",
    "x-ms-spillover-from-deployment",
    "azureml-model-session",
    "x-compute-type",
    "mistral-correlation-id",
    "x-generation-id",
    "inference-id",
];

/// The body fields copied into [`ServedIdentity::raw`] as seen.
pub const RAW_IDENTITY_FIELDS: &[&str] = &[
    "model",
    "system_fingerprint",
    "id",
    "modelVersion",
    "responseId",
    "service_tier",
    "provider",
];

/// What a response says was served, raw and normalised.
///
/// The gateway builds one per inference, from [`identity_from_response`] or a
/// [`crate::StreamObserver`], compares it with the deployment's expectation through
/// [`crate::classify`] and records it in the inference entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedIdentity {
    /// The served model, normalised: not empty, `models/` prefix removed. `None` when the
    /// response did not disclose it.
    pub model: Option<String>,
    /// `system_fingerprint` when disclosed: a backend build or configuration tag, not a model.
    pub system_fingerprint: Option<String>,
    /// The provider's id for this response: body `id`, else `responseId`.
    pub response_id: Option<String>,
    /// Gemini-style `modelVersion`, as sent.
    pub model_version: Option<String>,
    /// Other models that took part in the answer: Groq compound's
    /// `usage_breakdown.models[].model`, Anthropic's `usage.iterations[].model`.
    pub secondary_models: Vec<String>,
    /// The [`IDENTITY_HEADERS`] that came back, names lowercase, values raw.
    pub headers: BTreeMap<String, String>,
    /// Where [`ServedIdentity::model`] came from; `None` when it is `None`.
    pub source: Option<IdentitySource>,
    /// The [`RAW_IDENTITY_FIELDS`] as seen, `null` and `""` included, so the ledger shows
    /// what the provider actually sent.
    pub raw: Map<String, Value>,
}

/// Where the served model was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// A response header (`openai-model`).
    Header,
    /// A whole response body.
    Body,
    /// An event of a stream.
    Stream,
}

/// Reads the served identity of a whole (not streamed) response.
///
/// `headers` are the response's headers in any case; `body` is read as JSON if it is a JSON
/// object and ignored otherwise (the identity then holds only what the headers said).
pub fn identity_from_response(
    upstream: Upstream,
    headers: &[(String, String)],
    body: &[u8],
) -> ServedIdentity {
    let mut identity = ServedIdentity::from_headers(upstream, headers);
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        identity.absorb(&object, IdentitySource::Body);
    }
    identity
}

// === impl ServedIdentity ===

impl ServedIdentity {
    /// The identity the headers alone give: identity headers kept, and the served model if
    /// `upstream` sends it in a header.
    pub fn from_headers(upstream: Upstream, headers: &[(String, String)]) -> Self {
        let mut identity = ServedIdentity::default();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            let value = value.trim();
            if !value.is_empty() && IDENTITY_HEADERS.contains(&name.as_str()) {
                identity
                    .headers
                    .entry(name)
                    .or_insert_with(|| value.to_owned());
            }
        }
        let header_model = served_model_header(upstream).and_then(|h| identity.headers.get(h));
        if let Some(model) = header_model {
            identity.model = Some(model.clone());
            identity.source = Some(IdentitySource::Header);
        }
        identity
    }

    /// Takes in the identity fields of one response object (a body, a chunk, or the
    /// `response`/`message` object of an envelope event). Returns whether it disclosed a
    /// model.
    pub fn absorb(&mut self, object: &Map<String, Value>, source: IdentitySource) -> bool {
        self.absorb_raw(object);
        let model = disclosed(object, "model").map(str::to_owned);
        let model_version = disclosed(object, "modelVersion");
        let served = model.or_else(|| model_version.map(normalise_model_version));
        if let Some(served) = &served {
            if self.source != Some(IdentitySource::Header) {
                self.model = Some(served.clone());
                self.source = Some(source);
            }
        }

        set_if_disclosed(
            &mut self.system_fingerprint,
            disclosed(object, "system_fingerprint"),
        );
        set_if_disclosed(&mut self.model_version, model_version);
        let response_id = disclosed(object, "id").or_else(|| disclosed(object, "responseId"));
        set_if_disclosed(&mut self.response_id, response_id);
        self.absorb_secondary_models(object);
        served.is_some()
    }

    fn absorb_raw(&mut self, object: &Map<String, Value>) {
        for field in RAW_IDENTITY_FIELDS {
            let Some(value) = object.get(*field) else {
                continue;
            };
            if !self.raw.contains_key(*field) || discloses(value) {
                self.raw.insert((*field).to_owned(), value.clone());
            }
        }
    }

    fn absorb_secondary_models(&mut self, object: &Map<String, Value>) {
        let groq = object
            .get("usage_breakdown")
            .and_then(|breakdown| breakdown.get("models"));
        let anthropic = object
            .get("usage")
            .and_then(|usage| usage.get("iterations"));
        let entries = [groq, anthropic]
            .into_iter()
            .flatten()
            .filter_map(Value::as_array);
        for entry in entries.flatten().filter_map(Value::as_object) {
            if let Some(model) = disclosed(entry, "model") {
                if !self.secondary_models.iter().any(|known| known == model) {
                    self.secondary_models.push(model.to_owned());
                }
            }
        }
    }
}

/// The response header that names the served model on `upstream`, if there is one.
fn served_model_header(upstream: Upstream) -> Option<&'static str> {
    match upstream {
        Upstream::Openai | Upstream::OpenaiCompatible => Some("openai-model"),
        Upstream::AzureOpenai | Upstream::Anthropic => None,
    }
}

/// The string at `field` if it discloses something: a string that is not blank.
pub(crate) fn disclosed<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty())
}

fn discloses(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.trim().is_empty(),
        _ => true,
    }
}

fn set_if_disclosed(slot: &mut Option<String>, value: Option<&str>) {
    if let Some(value) = value {
        *slot = Some(value.to_owned());
    }
}

fn normalise_model_version(model_version: &str) -> String {
    model_version
        .strip_prefix("models/")
        .unwrap_or(model_version)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap_or_default()
    }

    #[test]
    fn later_blank_values_never_erase_earlier_ones() {
        let mut identity = ServedIdentity::default();
        identity.absorb(
            &object(r#"{"model":"m-1","system_fingerprint":"fp_1"}"#),
            IdentitySource::Stream,
        );
        identity.absorb(
            &object(r#"{"model":"","system_fingerprint":null}"#),
            IdentitySource::Stream,
        );
        assert_eq!(identity.model.as_deref(), Some("m-1"));
        assert_eq!(identity.system_fingerprint.as_deref(), Some("fp_1"));
        assert_eq!(identity.raw.get("model"), Some(&Value::from("m-1")));
    }

    #[test]
    fn raw_keeps_a_null_that_nothing_replaced() {
        let mut identity = ServedIdentity::default();
        identity.absorb(
            &object(r#"{"model":"gpt-5","system_fingerprint":null}"#),
            IdentitySource::Body,
        );
        assert_eq!(identity.system_fingerprint, None);
        assert_eq!(identity.raw.get("system_fingerprint"), Some(&Value::Null));
    }

    #[test]
    fn model_version_stands_in_for_a_missing_model() {
        let mut identity = ServedIdentity::default();
        let body = object(r#"{"modelVersion":"models/gemini-2.5-pro","responseId":"r1"}"#);
        assert!(identity.absorb(&body, IdentitySource::Body));
        assert_eq!(identity.model.as_deref(), Some("gemini-2.5-pro"));
        assert_eq!(
            identity.model_version.as_deref(),
            Some("models/gemini-2.5-pro")
        );
        assert_eq!(identity.response_id.as_deref(), Some("r1"));
    }

    #[test]
    fn header_model_beats_body_model() {
        let headers = [("OpenAI-Model".to_owned(), "gpt-3.5-turbo-0301".to_owned())];
        let body = br#"{"model":"gpt-3.5-turbo"}"#;
        let identity = identity_from_response(Upstream::Openai, &headers, body);
        assert_eq!(identity.model.as_deref(), Some("gpt-3.5-turbo-0301"));
        assert_eq!(identity.source, Some(IdentitySource::Header));
        assert_eq!(
            identity.raw.get("model"),
            Some(&Value::from("gpt-3.5-turbo"))
        );
    }
}
