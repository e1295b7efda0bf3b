//! `GET /metrics`: the gateway's counters and histograms in the Prometheus text format
//! (OpenMetrics 1.0, which Prometheus scrapes natively).
//!
//! Besides the usual traffic and latency figures, the gateway counts its own completeness,
//! and those counters must always add up:
//!
//! - every inference entry made durable is one `ascribe_inferences_recorded_total`, and
//!   carries one identity verdict in `ascribe_identity_match_total`;
//! - every answer handed back with an `Ascribe-Inference-Id` is one
//!   `ascribe_answers_released_total`; it is never more than the inferences recorded (the
//!   difference is callers that left before their recorded answer was released);
//! - every call refused because the ledger could not record it (a 503, nothing released) is
//!   one `ascribe_answers_refused_total`.
//!
//! Labels hold only registry names (alias, deployment), dialects, states and statuses: never
//! a key, a decision reference or anything from a body, and never a name the caller made up
//! (an unknown alias is counted under the empty alias).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of one inference request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The alias resolved; empty when the name was a checkpoint id or resolved to nothing.
    pub(crate) alias: String,
    /// The deployment called; empty when the call never got that far.
    pub(crate) deployment: String,
    /// The endpoint's dialect: `openai` or `anthropic`.
    pub(crate) dialect: String,
    /// The HTTP status the caller got.
    pub(crate) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DialectLabel {
    dialect: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabel {
    deployment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompletedLabel {
    completed: String,
}

/// Why an answer was refused without being released.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    /// The inference entry could not be made durable.
    LedgerWrite,
    /// The registry or the keys could not be read, so the call could not be routed.
    LedgerRead,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::LedgerWrite => "ledger_write_failed",
            Refusal::LedgerRead => "ledger_read_failed",
        }
    }
}

/// Every metric the gateway keeps, and the registry that encodes them.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    added_latency: Family<DialectLabel, Histogram>,
    upstream_latency: Family<DeploymentLabel, Histogram>,
    ledger_append: Histogram,
    ledger_batch: Histogram,
    ledger_failures: Counter,
    released: Counter,
    recorded: Counter,
    refused: Family<ReasonLabel, Counter>,
    identity: Family<StateLabel, Counter>,
    observations: Family<KindLabel, Counter>,
    completions: Family<CompletedLabel, Counter>,
    alive_tasks: Gauge,
}

/// Seconds from 50 µs to about 26 s: gateway overhead and ledger commits.
fn short_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 20)
}

/// Seconds from 1 ms to about 9 minutes: upstream answers.
fn long_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 20)
}

impl Metrics {
    /// Registers every metric, all at zero.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ascribe_inference_requests",
            "Inference requests answered, by alias, deployment, dialect and status",
            requests.clone(),
        );
        let added_latency = Family::<DialectLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(short_buckets())
        });
        registry.register(
            "ascribe_added_latency_seconds",
            "Time the gateway added to a call: from the request to the release of the answer \
             (its first byte for streams), less the time spent waiting on the upstream",
            added_latency.clone(),
        );
        let upstream_latency = Family::<DeploymentLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(long_buckets())
        });
        registry.register(
            "ascribe_upstream_latency_seconds",
            "Time spent waiting on the upstream before an answer could be released: the whole \
             body, or a stream's events up to the one naming the served model",
            upstream_latency.clone(),
        );
        let ledger_append = Histogram::new(short_buckets());
        registry.register(
            "ascribe_ledger_append_seconds",
            "Duration of one ledger write transaction, from the write lock to the durable \
             commit",
            ledger_append.clone(),
        );
        let ledger_batch = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "ascribe_ledger_batch_entries",
            "Entries committed together in one ledger transaction",
            ledger_batch.clone(),
        );
        let ledger_failures = Counter::default();
        registry.register(
            "ascribe_ledger_write_failures",
            "Ledger write transactions that failed; nothing of them was written",
            ledger_failures.clone(),
        );
        let released = Counter::default();
        registry.register(
            "ascribe_answers_released",
            "Answers handed back with an Ascribe-Inference-Id, each after its inference entry \
             was durable",
            released.clone(),
        );
        let recorded = Counter::default();
        registry.register(
            "ascribe_inferences_recorded",
            "Inference entries made durable",
            recorded.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "ascribe_answers_refused",
            "Calls answered 503 with nothing released because the ledger could not record \
             them, by reason",
            refused.clone(),
        );
        let identity = Family::<StateLabel, Counter>::default();
        registry.register(
            "ascribe_identity_match",
            "Recorded inferences by how the served identity compared with the deployment's \
             expectation: match, mismatch, undisclosed, or none when nothing was served",
            identity.clone(),
        );
        let observations = Family::<KindLabel, Counter>::default();
        registry.register(
            "ascribe_observations",
            "Observation entries made durable, by kind",
            observations.clone(),
        );
        let completions = Family::<CompletedLabel, Counter>::default();
        registry.register(
            "ascribe_stream_completions",
            "Stream completion entries made durable, by whether the stream ended normally",
            completions.clone(),
        );
        registry.register(
            "ascribe_otlp_spans_dropped",
            "Inference spans the OTLP exporter could not deliver (only when export is on)",
            crate::telemetry::SPANS_DROPPED.clone(),
        );
        let alive_tasks = Gauge::default();
        registry.register(
            "ascribe_runtime_alive_tasks",
            "Tasks alive on the gateway's async runtime when this page was made: connections, \
             requests, stream relays and background work (a steady climb is a leak)",
            alive_tasks.clone(),
        );
        // Counters an alert watches exist from the start, at zero, so that "no data" never
        // stands for "none happened".
        for refusal in [Refusal::LedgerWrite, Refusal::LedgerRead] {
            let label = ReasonLabel {
                reason: refusal.label().to_owned(),
            };
            drop(refused.get_or_create(&label));
        }
        for state in ["match", "mismatch", "undisclosed", "none"] {
            let label = StateLabel {
                state: state.to_owned(),
            };
            drop(identity.get_or_create(&label));
        }
        for completed in ["true", "false"] {
            let label = CompletedLabel {
                completed: completed.to_owned(),
            };
            drop(completions.get_or_create(&label));
        }
        Metrics {
            registry,
            requests,
            added_latency,
            upstream_latency,
            ledger_append,
            ledger_batch,
            ledger_failures,
            released,
            recorded,
            refused,
            identity,
            observations,
            completions,
            alive_tasks,
        }
    }

    /// One inference request answered.
    pub(crate) fn request_answered(&self, labels: RequestLabels) {
        self.requests.get_or_create(&labels).inc();
    }

    /// The time the gateway itself took before releasing an answer.
    pub(crate) fn added_latency(&self, dialect: &str, added: Duration) {
        let label = DialectLabel {
            dialect: dialect.to_owned(),
        };
        self.added_latency
            .get_or_create(&label)
            .observe(added.as_secs_f64());
    }

    /// The time spent waiting on an upstream before an answer could be released.
    pub(crate) fn upstream_latency(&self, deployment: &str, waited: Duration) {
        let label = DeploymentLabel {
            deployment: deployment.to_owned(),
        };
        self.upstream_latency
            .get_or_create(&label)
            .observe(waited.as_secs_f64());
    }

    /// An inference entry made durable, with its identity verdict.
    pub(crate) fn inference_recorded(&self, identity_match: &str) {
        self.recorded.inc();
        let label = StateLabel {
            state: identity_match.to_owned(),
        };
        self.identity.get_or_create(&label).inc();
    }

    /// An answer released after its record was durable.
    pub(crate) fn answer_released(&self) {
        self.released.inc();
    }

    /// A call refused because the ledger could not record (or route) it.
    pub(crate) fn answer_refused(&self, refusal: Refusal) {
        let label = ReasonLabel {
            reason: refusal.label().to_owned(),
        };
        self.refused.get_or_create(&label).inc();
    }

    /// An observation entry made durable.
    pub(crate) fn observation_recorded(&self, kind: &str) {
        let label = KindLabel {
            kind: kind.to_owned(),
        };
        self.observations.get_or_create(&label).inc();
    }

    /// A stream's completion entry made durable.
    pub(crate) fn stream_completed(&self, completed: bool) {
        let label = CompletedLabel {
            completed: completed.to_string(),
        };
        self.completions.get_or_create(&label).inc();
    }

    /// A ledger transaction of `entries` entries committed in `took` (0 entries: a
    /// writability check, which is not a batch).
    pub(crate) fn ledger_committed(&self, entries: usize, took: Duration) {
        if entries == 0 {
            return;
        }
        self.ledger_append.observe(took.as_secs_f64());
        self.ledger_batch.observe(entries as f64);
    }

    /// A ledger transaction that failed.
    pub(crate) fn ledger_failed(&self) {
        self.ledger_failures.inc();
    }

    /// Everything, in the OpenMetrics text format; the gauges read now.
    fn encode(&self) -> Result<String, std::fmt::Error> {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let alive = runtime.metrics().num_alive_tasks();
            self.alive_tasks
                .set(i64::try_from(alive).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_show))
}

/// `GET /metrics`, open to anyone who can reach the gateway, like the health routes: it holds
/// counts and registry names, nothing an auditor key protects. Off when the configuration
/// says so (then 404).
async fn metrics_show(State(state): State<AppState>) -> Response {
    if !state.config().metrics {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.metrics().encode() {
        Ok(text) => {
            let mut response = text.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn counters_are_encoded_with_their_labels() {
        let metrics = Metrics::new();
        metrics.inference_recorded("match");
        metrics.inference_recorded("match");
        metrics.inference_recorded("undisclosed");
        metrics.answer_released();
        metrics.answer_refused(Refusal::LedgerWrite);
        metrics.request_answered(RequestLabels {
            alias: "v1".into(),
            deployment: "gpt4o".into(),
            dialect: "openai".into(),
            status: 200,
        });
        metrics.ledger_committed(3, Duration::from_millis(2));
        metrics.ledger_committed(0, Duration::from_millis(1));
        let text = metrics.encode().expect("encodes");

        assert_eq!(
            line_value(&text, "ascribe_inferences_recorded_total "),
            Some(3.0)
        );
        assert_eq!(
            line_value(&text, "ascribe_identity_match_total{state=\"match\"}"),
            Some(2.0)
        );
        assert_eq!(
            line_value(&text, "ascribe_answers_released_total "),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                "ascribe_answers_refused_total{reason=\"ledger_write_failed\"}"
            ),
            Some(1.0)
        );
        let request = "ascribe_inference_requests_total{alias=\"v1\",deployment=\"gpt4o\",\
                       dialect=\"openai\",status=\"200\"}";
        assert_eq!(line_value(&text, request), Some(1.0));
        // The writability check is not a batch.
        assert_eq!(
            line_value(&text, "ascribe_ledger_batch_entries_count "),
            Some(1.0)
        );
        assert_eq!(
            line_value(&text, "ascribe_ledger_batch_entries_sum "),
            Some(3.0)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn alive_tasks_are_read_from_the_runtime_when_encoded() {
        let metrics = Metrics::new();
        let outside = metrics.encode().expect("encodes");
        assert_eq!(
            line_value(&outside, "ascribe_runtime_alive_tasks "),
            Some(0.0)
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let text = runtime.block_on(async {
            let (_keep, waiting) = tokio::sync::oneshot::channel::<()>();
            let tasks = (tokio::spawn(waiting), tokio::spawn(async {}));
            let text = metrics.encode().expect("encodes");
            drop(tasks);
            text
        });
        // Both spawned tasks are alive: neither has been polled yet.
        assert_eq!(line_value(&text, "ascribe_runtime_alive_tasks "), Some(2.0));
    }
}
