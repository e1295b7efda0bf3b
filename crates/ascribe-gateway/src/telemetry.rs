//! OpenTelemetry: one client span per inference, following the GenAI semantic conventions,
//! and the W3C trace context carried from the caller to the upstream.
//!
//! The span is named `{gen_ai.operation.name} {gen_ai.request.model}` (`chat v1`) and holds:
//!
//! | attribute | value |
//! | --- | --- |
//! | `gen_ai.operation.name` | `chat` (chat completions, Responses, Messages) or `embeddings` |
//! | `gen_ai.provider.name` | `openai`, `azure.ai.openai` or `anthropic` (by dialect) |
//! | `gen_ai.request.model` | the name the caller sent: the alias |
//! | `gen_ai.response.model` | the model the provider said it served, when it said |
//! | `gen_ai.response.id`, `openai.response.system_fingerprint` | as the provider sent them |
//! | `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` | from the answer's usage |
//! | `gen_ai.response.finish_reasons` | a stream's last finish reason |
//! | `server.address`, `server.port` | the upstream called |
//! | `ascribe.{inference_id,checkpoint,deployment,alias,identity_match}` | as recorded |
//! | `error.type`, status `Error` | when the call failed |
//!
//! A stream's span ends when its completion is recorded, so usage and truncation are on it.
//!
//! Exporting is off unless [`install_otlp`] ran; then spans go over OTLP/HTTP to the
//! endpoint the standard `OTEL_EXPORTER_OTLP_*` variables name. Without it every span is a
//! no-op that still carries the caller's trace context, so `traceparent` reaches the
//! upstream either way. No body, key or decision reference is ever an attribute.

use ascribe_dialects::{Api, ServedIdentity, Upstream};
use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde_json::Value;

/// The instrumentation scope of every span.
const SCOPE: &str = "ascribe-gateway";

/// The span of one inference, with the context that holds it; the span ends when this is
/// dropped.
pub(crate) struct InferenceSpan {
    context: Context,
}

/// What the span needs to know about a call when it starts.
pub(crate) struct SpanStart<'a> {
    /// The request's headers, for the caller's `traceparent` and `tracestate`.
    pub(crate) headers: &'a HeaderMap,
    /// The endpoint called.
    pub(crate) api: Api,
    /// The name the caller sent.
    pub(crate) requested_model: &'a str,
    /// How the deployment's upstream speaks.
    pub(crate) upstream: Upstream,
    /// The upstream's URL.
    pub(crate) url: &'a str,
}

impl InferenceSpan {
    /// Starts the span as a child of the caller's trace context, if it sent one.
    pub(crate) fn start(start: &SpanStart<'_>) -> InferenceSpan {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(start.headers));
        let operation = operation_name(start.api);
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("gen_ai.provider.name", provider_name(start.upstream)),
            KeyValue::new("gen_ai.request.model", start.requested_model.to_owned()),
        ];
        if let Ok(url) = reqwest::Url::parse(start.url) {
            if let Some(host) = url.host_str() {
                attributes.push(KeyValue::new("server.address", host.to_owned()));
            }
            if let Some(port) = url.port_or_known_default() {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        let tracer = opentelemetry::global::tracer(SCOPE);
        let span = tracer
            .span_builder(format!("{operation} {}", start.requested_model))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent);
        InferenceSpan {
            context: parent.with_span(span),
        }
    }

    /// Adds `traceparent` (and `tracestate`) for this span to an upstream request's headers.
    pub(crate) fn inject(&self, headers: &mut Vec<(String, String)>) {
        TraceContextPropagator::new().inject_context(&self.context, &mut HeaderInjector(headers));
    }

    /// What the ledger recorded for the call.
    pub(crate) fn recorded(&self, record: &RecordedAttributes<'_>) {
        let span = self.context.span();
        let mut attributes = vec![
            KeyValue::new("ascribe.inference_id", record.inference_id.to_owned()),
            KeyValue::new("ascribe.checkpoint", record.checkpoint.to_owned()),
            KeyValue::new("ascribe.deployment", record.deployment.to_owned()),
            KeyValue::new("ascribe.identity_match", record.identity_match.to_owned()),
        ];
        if let Some(alias) = record.alias {
            attributes.push(KeyValue::new("ascribe.alias", alias.to_owned()));
        }
        attributes.extend(served_attributes(record.served));
        if let Some(usage) = record.usage {
            attributes.extend(usage_attributes(usage));
        }
        span.set_attributes(attributes);
    }

    /// What a stream's end added: its identity as finally seen, usage and finish reason.
    pub(crate) fn stream_ended(
        &self,
        served: &ServedIdentity,
        usage: Option<&Value>,
        finish_reason: Option<&str>,
        cut: Option<&str>,
    ) {
        let span = self.context.span();
        let mut attributes = served_attributes(served);
        if let Some(usage) = usage {
            attributes.extend(usage_attributes(usage));
        }
        if let Some(reason) = finish_reason {
            let reasons: Vec<opentelemetry::StringValue> = vec![reason.to_owned().into()];
            let reasons = opentelemetry::Value::Array(reasons.into());
            attributes.push(KeyValue::new("gen_ai.response.finish_reasons", reasons));
        }
        span.set_attributes(attributes);
        if let Some(cut) = cut {
            self.failed("stream_cut", cut);
        }
    }

    /// The call failed: `error_type` is a short stable word, `description` for people.
    pub(crate) fn failed(&self, error_type: &str, description: &str) {
        let span = self.context.span();
        span.set_attribute(KeyValue::new("error.type", error_type.to_owned()));
        span.set_status(Status::error(description.to_owned()));
    }
}

/// The ledger's side of an inference, for its span.
pub(crate) struct RecordedAttributes<'a> {
    pub(crate) inference_id: &'a str,
    pub(crate) checkpoint: &'a str,
    pub(crate) deployment: &'a str,
    pub(crate) alias: Option<&'a str>,
    pub(crate) identity_match: &'a str,
    pub(crate) served: &'a ServedIdentity,
    pub(crate) usage: Option<&'a Value>,
}

fn operation_name(api: Api) -> &'static str {
    match api {
        Api::Embeddings => "embeddings",
        Api::ChatCompletions | Api::Responses | Api::Messages => "chat",
    }
}

fn provider_name(upstream: Upstream) -> &'static str {
    match upstream {
        Upstream::Anthropic => "anthropic",
        Upstream::AzureOpenai => "azure.ai.openai",
        _ => "openai",
    }
}

fn served_attributes(served: &ServedIdentity) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    if let Some(model) = &served.model {
        attributes.push(KeyValue::new("gen_ai.response.model", model.clone()));
    }
    if let Some(id) = &served.response_id {
        attributes.push(KeyValue::new("gen_ai.response.id", id.clone()));
    }
    if let Some(fingerprint) = &served.system_fingerprint {
        attributes.push(KeyValue::new(
            "openai.response.system_fingerprint",
            fingerprint.clone(),
        ));
    }
    attributes
}

/// Token counts in either dialect's words: `prompt_tokens`/`completion_tokens` (chat
/// completions) or `input_tokens`/`output_tokens` (Responses, Anthropic).
fn usage_attributes(usage: &Value) -> Vec<KeyValue> {
    let count = |names: [&str; 2]| names.iter().find_map(|name| usage[*name].as_i64());
    let mut attributes = Vec::new();
    if let Some(input) = count(["input_tokens", "prompt_tokens"]) {
        attributes.push(KeyValue::new("gen_ai.usage.input_tokens", input));
    }
    if let Some(output) = count(["output_tokens", "completion_tokens"]) {
        attributes.push(KeyValue::new("gen_ai.usage.output_tokens", output));
    }
    attributes
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = key.to_ascii_lowercase();
        self.0.retain(|(name, _)| *name != key);
        self.0.push((key, value));
    }
}

/// Why OTLP export could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or its traces variant) names a protocol this build
    /// does not speak.
    #[error(
        "OTLP protocol `{0}` is not supported; set OTEL_EXPORTER_OTLP_PROTOCOL to http/protobuf \
         or http/json (point it at the collector's HTTP receiver, port 4318)"
    )]
    Protocol(String),
    /// The exporter could not be built.
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(String),
}

/// Where and how spans are exported, as the standard `OTEL_EXPORTER_OTLP_*` variables say.
#[derive(Debug)]
pub struct OtlpTarget {
    /// `http/protobuf` (the default) or `http/json`.
    pub protocol: &'static str,
    /// The URL spans are posted to.
    pub endpoint: String,
}

impl OtlpTarget {
    /// Reads the protocol (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`) and the endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else `http://localhost:4318/v1/traces`);
    /// refuses a protocol this build does not speak.
    pub fn from_env() -> Result<OtlpTarget, TelemetryError> {
        let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|_| "http/protobuf".to_owned());
        let protocol = match protocol.as_str() {
            "http/protobuf" => "http/protobuf",
            "http/json" => "http/json",
            other => return Err(TelemetryError::Protocol(other.to_owned())),
        };
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|_| {
                std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| base + "/v1/traces")
            })
            .unwrap_or_else(|_| "http://localhost:4318/v1/traces".to_owned());
        Ok(OtlpTarget { protocol, endpoint })
    }

    /// Whether the endpoint is an `http://` or `https://` URL with a host, which the
    /// exporter needs; anything else silently exports nothing.
    pub fn endpoint_is_http(&self) -> bool {
        reqwest::Url::parse(&self.endpoint)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
    }
}

/// Exports spans over OTLP/HTTP until [`OtlpGuard::shutdown`]: endpoint, headers, timeout and
/// compression from the standard `OTEL_EXPORTER_OTLP_*` variables (default
/// `http://localhost:4318/v1/traces`), the protocol from `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`
/// or `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `http/json`), the
/// resource from `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (service name `ascribe`
/// by default). Call it outside an async runtime: the exporter's HTTP client blocks.
pub fn install_otlp() -> Result<OtlpGuard, TelemetryError> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};

    let protocol = match OtlpTarget::from_env()?.protocol {
        "http/json" => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
    let exporter = ReportingExporter(exporter);
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("ascribe");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(OtlpGuard { provider })
}

/// Spans that could not be exported (the collector refused them or could not be reached);
/// `/metrics` shows it as `ascribe_otlp_spans_dropped_total`.
pub(crate) static SPANS_DROPPED: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
    std::sync::LazyLock::new(Default::default);

/// The OTLP exporter, with its failures logged and counted: the SDK itself drops a batch it
/// could not send without a word.
#[derive(Debug)]
struct ReportingExporter<E>(E);

impl<E: SpanExporter> SpanExporter for ReportingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let exported = self.0.export(batch).await;
        if let Err(error) = &exported {
            SPANS_DROPPED.inc_by(spans as u64);
            tracing::warn!(%error, spans, "spans could not be exported over OTLP; they are lost");
        }
        exported
    }

    fn shutdown_with_timeout(&mut self, timeout: std::time::Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}

/// Keeps OTLP export running; [`OtlpGuard::shutdown`] flushes the spans still queued.
pub struct OtlpGuard {
    provider: SdkTracerProvider,
}

impl OtlpGuard {
    /// Exports what is queued and stops. Call it outside an async runtime.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "spans still queued may not have been exported");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_in_both_dialects() {
        let chat = serde_json::json!({"prompt_tokens": 12, "completion_tokens": 3});
        let anthropic = serde_json::json!({"input_tokens": 7, "output_tokens": 9});
        let pairs = |attributes: Vec<KeyValue>| {
            attributes
                .into_iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(usage_attributes(&chat)),
            [
                ("gen_ai.usage.input_tokens".to_owned(), "12".to_owned()),
                ("gen_ai.usage.output_tokens".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!(
            pairs(usage_attributes(&anthropic)),
            [
                ("gen_ai.usage.input_tokens".to_owned(), "7".to_owned()),
                ("gen_ai.usage.output_tokens".to_owned(), "9".to_owned())
            ]
        );
    }

    #[test]
    fn the_callers_trace_continues_to_the_upstream_without_an_exporter() {
        let mut headers = HeaderMap::new();
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", traceparent.parse().expect("header"));
        let span = InferenceSpan::start(&SpanStart {
            headers: &headers,
            api: Api::ChatCompletions,
            requested_model: "v1",
            upstream: Upstream::Openai,
            url: "https://api.openai.com/v1/chat/completions",
        });
        let mut upstream = vec![("content-type".to_owned(), "application/json".to_owned())];
        span.inject(&mut upstream);
        let sent = upstream
            .iter()
            .find(|(name, _)| name == "traceparent")
            .map(|(_, value)| value.as_str());
        // No provider is installed in unit tests: the no-op span keeps the caller's ids.
        assert_eq!(sent, Some(traceparent));
    }
}
