//! What an operator watches, checked against what the ledger holds, on SQLite and PostgreSQL.
//!
//! - `/metrics` adds up after faults: a scripted mix of answers, upstream failures, an
//!   unknown alias and two periods when the ledger cannot record (a projection table gone,
//!   then the entries table) gives counters equal to the ledger's own counts and to what the
//!   callers got, exactly; a call refused for want of a record leaves nothing in the
//!   ledger, not even the observations that would have gone with it.
//! - `/readyz` says the gateway is not ready while another writer holds the ledger's write
//!   lock and while the ledger cannot be written, says why, and is ready again once the
//!   ledger is, without a restart; `/healthz` answers 200 throughout.
//! - `/metrics` can be switched off.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ascribe_gateway::GatewayConfig;
use ascribe_store::{DatabaseLocation, PostgresBackend, SqliteBackend};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use common::{Gateway, StandInBench, Store};

/// An alias the registry does not know.
const UNKNOWN_ALIAS: &str = "no-such-alias";

const GPT_4O: &str = "gpt-4o-2024-08-06";
const GPT_4O_MINI: &str = "gpt-4o-mini-2024-07-18";
const CLAUDE: &str = "claude-sonnet-4-5-20250929";

/// Stand-in scenarios, each a deployment and an alias of the same name: its dialect and
/// the model it is expected to serve.
const SCENARIOS: [(&str, &str, Option<&str>); 8] = [
    ("openai-chat", "openai-compatible", Some(GPT_4O)),
    ("openai-chat-cut", "openai-compatible", Some(GPT_4O_MINI)),
    ("openai-rate-limited", "openai-compatible", Some(GPT_4O)),
    ("garbage", "openai-compatible", Some(GPT_4O)),
    ("slow", "openai-compatible", Some(GPT_4O)),
    ("echo", "openai-compatible", None),
    ("anthropic-messages", "anthropic", Some(CLAUDE)),
    ("anthropic-overloaded", "anthropic", Some(CLAUDE)),
];

/// The stand-in scenarios behind a gateway with an upstream timeout short enough for the
/// `slow` scenario to time out quickly.
fn bench(store: Store) -> StandInBench {
    let config = GatewayConfig {
        upstream_timeout: Duration::from_millis(500),
        ..GatewayConfig::default()
    };
    StandInBench::start(store, config, &SCENARIOS)
}

/// What the test saw of the calls it made, as the metrics should count them.
#[derive(Default)]
struct Tally {
    /// Calls by (alias, deployment, dialect, status) as the metrics label them.
    by_labels: BTreeMap<(String, String, String, u16), u64>,
    /// Inference ids handed back in `Ascribe-Inference-Id`.
    released: BTreeSet<String>,
    /// Streams handed back with an inference id: each ends in a completion entry.
    streams_released: u64,
    /// 503s answered while the ledger could not record the call.
    refused: u64,
}

impl Tally {
    /// Calls `model` (through the Anthropic endpoint for Anthropic scenarios) and counts
    /// what came back; returns the status and the inference id, if any.
    fn infer(&mut self, gateway: &Gateway, model: &str, stream: bool) -> (u16, Option<String>) {
        let anthropic = model.starts_with("anthropic");
        let mut body = json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        });
        let request = match anthropic {
            true => {
                body["max_tokens"] = json!(8);
                Request::post("/v1/messages")
                    .header("x-api-key", &gateway.caller)
                    .header("anthropic-version", "2023-06-01")
            }
            false => Request::post("/v1/chat/completions")
                .header("authorization", format!("Bearer {}", gateway.caller)),
        };
        let request = request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let (status, headers, _) = gateway.send_raw(request);
        let inference_id = headers
            .get("ascribe-inference-id")
            .map(|id| id.to_str().expect("ascii id").to_owned());

        let known = model != UNKNOWN_ALIAS;
        let name = if known { model } else { "" };
        let dialect = if anthropic { "anthropic" } else { "openai" };
        let labels = (name.into(), name.into(), dialect.into(), status.as_u16());
        *self.by_labels.entry(labels).or_default() += 1;
        if let Some(id) = &inference_id {
            assert!(self.released.insert(id.clone()), "{id} handed back twice");
            self.streams_released += u64::from(stream);
        }
        (status.as_u16(), inference_id)
    }

    /// A call made while the ledger cannot record it: it must be refused with a 503 and no
    /// inference id.
    fn refused(&mut self, gateway: &Gateway, model: &str, stream: bool) {
        let (status, inference_id) = self.infer(gateway, model, stream);
        assert_eq!(
            (status, inference_id.as_deref()),
            (503, None),
            "{model} (stream: {stream}) while the ledger cannot record it"
        );
        self.refused += 1;
    }

    /// Calls made, whatever they got.
    fn calls(&self) -> u64 {
        self.by_labels.values().sum()
    }

    /// Calls by the status they got.
    fn by_status(&self) -> BTreeMap<u16, u64> {
        let mut by_status = BTreeMap::new();
        for ((_, _, _, status), count) in &self.by_labels {
            *by_status.entry(*status).or_default() += count;
        }
        by_status
    }
}

/// Asserts a call got `status`, with an inference id exactly when it was recorded.
fn expect_answer(got: (u16, Option<String>), status: u16, recorded: bool, what: &str) {
    assert_eq!(got.0, status, "{what}");
    assert_eq!(got.1.is_some(), recorded, "{what}: Ascribe-Inference-Id");
}

/// The ledger's entries table: without it no write transaction, append or writability
/// check, can run.
const ENTRIES_TABLE: &str = "ledger_entries";

/// The inference projection's table: without it an inference entry cannot be written, while
/// other entries (observations among them) and writability checks still can.
const INFERENCES_TABLE: &str = "inferences";

/// Takes `table` away for a moment, as a botched migration would, by renaming it; reads of
/// keys and the registry still work. The same failure as a dropped table, but undone by
/// [`put_back`] with every row intact.
fn take_away(gateway: &Gateway, table: &str) {
    gateway.execute(&format!("ALTER TABLE {table} RENAME TO {table}_away"));
}

/// Undoes [`take_away`]; the running gateway writes again without a restart.
fn put_back(gateway: &Gateway, table: &str) {
    gateway.execute(&format!("ALTER TABLE {table}_away RENAME TO {table}"));
}

/// Every entry's body, by kind.
fn bodies_of_kind(gateway: &Gateway, kind: &str) -> Vec<Value> {
    gateway
        .entries()
        .into_iter()
        .filter(|entry| entry["kind"] == kind)
        .map(|entry| entry["body"].clone())
        .collect()
}

/// How many bodies have each value of `field` (rendered as text).
fn count_by(bodies: &[Value], field: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for body in bodies {
        let value = match &body[field] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        *counts.entry(value).or_default() += 1;
    }
    counts
}

/// Waits until every stream handed back so far has its completion entry.
fn settle(gateway: &Gateway, tally: &Tally) {
    let expected = usize::try_from(tally.streams_released).expect("small");
    let done =
        gateway.wait_until(|| bodies_of_kind(gateway, "inference.completed").len() >= expected);
    assert!(done, "{expected} stream completions recorded");
}

/// One sample of the OpenMetrics text.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: u64,
}

/// `GET /metrics`, checked for its content type and terminator, as samples.
fn scrape(gateway: &Gateway) -> Vec<Sample> {
    let request = Request::get("/metrics")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = gateway.send_raw(request);
    assert_eq!(status, StatusCode::OK);
    let content_type = headers.get("content-type").expect("content type");
    assert!(
        content_type
            .to_str()
            .expect("text")
            .starts_with("application/openmetrics-text"),
        "{content_type:?}"
    );
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(parse_sample)
        .collect()
}

/// Scrapes until `settled` holds, at most two seconds. A stream's completion is counted by
/// its relay task once the entry is durable, so the ledger may show it a moment before the
/// metrics do.
fn scrape_when(gateway: &Gateway, settled: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    for _ in 0..100 {
        let samples = scrape(gateway);
        if settled(&samples) {
            return samples;
        }
        // Lets the gateway's runtime run its tasks for one short poll.
        let polled = AtomicBool::new(false);
        gateway.wait_until(|| polled.swap(true, Ordering::SeqCst));
    }
    scrape(gateway)
}

/// `name{key="value",...} value`; label values here never hold quotes or commas, but
/// escapes are undone anyway. Histogram sums and buckets are not whole numbers and are
/// left at 0: no test reads them.
fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("a value");
    let (name, labels) = match series.split_once('{') {
        Some((name, labels)) => (name, labels.strip_suffix('}').expect("closing brace")),
        None => (series, ""),
    };
    let labels = labels
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
            let value = value.strip_suffix('"').unwrap_or(value);
            (
                key.to_owned(),
                value.replace("\\\"", "\"").replace("\\\\", "\\"),
            )
        })
        .collect();
    Sample {
        name: name.to_owned(),
        labels,
        value: value.parse().unwrap_or(0),
    }
}

/// The sum of a metric over all its label sets (0 when it has none yet).
fn total(samples: &[Sample], name: &str) -> u64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .map(|sample| sample.value)
        .sum()
}

/// A metric's values by one label.
fn by_label(samples: &[Sample], name: &str, label: &str) -> BTreeMap<String, u64> {
    let mut values = BTreeMap::new();
    for sample in samples.iter().filter(|sample| sample.name == name) {
        let key = sample.labels.get(label).cloned().unwrap_or_default();
        *values.entry(key).or_default() += sample.value;
    }
    values
}

fn metrics_add_up_to_the_ledger_after_faults(store: Store) {
    let mut bench = bench(store);
    let mut tally = Tally::default();
    let gateway = &bench.gateway;

    // Inferences cannot be recorded, though the observations that go with them could be:
    // the first answers of `openai-chat` carry a fingerprint new to its checkpoint, and the
    // stream a mismatch. Neither the answer nor its observations may be written.
    take_away(gateway, INFERENCES_TABLE);
    tally.refused(gateway, "openai-chat", false);
    tally.refused(gateway, "openai-chat", true);
    put_back(gateway, INFERENCES_TABLE);

    // Answers, whole and streamed, with every identity verdict but `none`.
    let answered: [(&str, bool); 7] = [
        ("openai-chat", false),
        ("openai-chat", false),
        ("openai-chat", true),
        ("openai-chat-cut", true),
        ("echo", false),
        ("anthropic-messages", false),
        ("anthropic-messages", true),
    ];
    for (model, stream) in answered {
        let got = tally.infer(gateway, model, stream);
        expect_answer(got, 200, true, model);
    }
    // Upstream failures, recorded with the verdict `none` and handed back with their id.
    let failures: [(&str, u16); 4] = [
        ("openai-rate-limited", 429),
        ("garbage", 502),
        ("slow", 504),
        ("anthropic-overloaded", 529),
    ];
    for (model, status) in failures {
        expect_answer(tally.infer(gateway, model, false), status, true, model);
    }
    let unknown = tally.infer(gateway, UNKNOWN_ALIAS, false);
    expect_answer(unknown, 404, false, UNKNOWN_ALIAS);
    settle(gateway, &tally);

    // The ledger cannot be written at all: nothing is released, whatever the upstream said.
    take_away(gateway, ENTRIES_TABLE);
    tally.refused(gateway, "openai-chat", false);
    tally.refused(gateway, "openai-chat", true);
    tally.refused(gateway, "openai-rate-limited", false);
    tally.refused(gateway, "anthropic-messages", false);
    put_back(gateway, ENTRIES_TABLE);

    // The same gateway records and answers again.
    for (model, stream) in [("openai-chat", false), ("openai-chat", true)] {
        expect_answer(tally.infer(gateway, model, stream), 200, true, model);
    }
    settle(gateway, &tally);

    let completions = bodies_of_kind(gateway, "inference.completed");
    let samples = scrape_when(gateway, |samples| {
        total(samples, "ascribe_stream_completions_total") == completions.len() as u64
    });
    let recorded = bodies_of_kind(gateway, "inference.recorded");
    let recorded_ids: BTreeSet<String> = recorded
        .iter()
        .map(|body| body["inference_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        recorded_ids, tally.released,
        "every answer handed back with an id is recorded, and nothing else is"
    );
    assert_eq!(
        total(&samples, "ascribe_inferences_recorded_total"),
        recorded.len() as u64
    );
    let verdicts = count_by(&recorded, "identity_match");
    let states: Vec<&str> = verdicts.keys().map(String::as_str).collect();
    assert_eq!(
        states,
        ["match", "mismatch", "none", "undisclosed"],
        "the script's reach"
    );
    assert_eq!(
        by_label(&samples, "ascribe_identity_match_total", "state"),
        verdicts
    );
    assert_eq!(
        total(&samples, "ascribe_answers_released_total"),
        tally.released.len() as u64
    );
    let refused = by_label(&samples, "ascribe_answers_refused_total", "reason");
    // Both reasons are published from the start; only the unwritable ledger refused calls.
    let expected = BTreeMap::from([
        ("ledger_read_failed".to_owned(), 0),
        ("ledger_write_failed".to_owned(), tally.refused),
    ]);
    assert_eq!(refused, expected, "only refusals for the unwritable ledger");
    assert!(
        total(&samples, "ascribe_ledger_write_failures_total") >= tally.refused,
        "each refused call met at least one failed write"
    );

    assert_eq!(
        total(&samples, "ascribe_inference_requests_total"),
        tally.calls()
    );
    let by_status = by_label(&samples, "ascribe_inference_requests_total", "status");
    let observed: BTreeMap<String, u64> = tally
        .by_status()
        .into_iter()
        .map(|(status, count)| (status.to_string(), count))
        .collect();
    assert_eq!(by_status, observed, "calls by status");
    let by_labels: BTreeMap<(String, String, String, u16), u64> = samples
        .iter()
        .filter(|sample| sample.name == "ascribe_inference_requests_total")
        .map(|sample| {
            let label = |key: &str| sample.labels.get(key).cloned().expect("label");
            let status = label("status").parse().expect("status");
            let key = (
                label("alias"),
                label("deployment"),
                label("dialect"),
                status,
            );
            (key, sample.value)
        })
        .collect();
    assert_eq!(
        by_labels, tally.by_labels,
        "alias, deployment and dialect of each call; the unknown alias under the empty one"
    );

    let observations = bodies_of_kind(gateway, "observation.recorded");
    for observation in &observations {
        let id = observation["inference_id"]
            .as_str()
            .expect("an inference's observation");
        assert!(
            recorded_ids.contains(id),
            "observation of {id}, an inference the ledger does not hold: {observation}"
        );
    }
    assert_eq!(
        by_label(&samples, "ascribe_observations_total", "kind"),
        count_by(&observations, "kind")
    );
    assert_eq!(completions.len() as u64, tally.streams_released);
    assert_eq!(
        by_label(&samples, "ascribe_stream_completions_total", "completed"),
        count_by(&completions, "completed")
    );

    let report = bench.gateway.stop_and_verify();
    assert!(report.ok, "{:?}", report.error);
}
on_both_stores!(metrics_add_up_to_the_ledger_after_faults);

/// Another process holding the ledger's write lock: SQLite's `BEGIN EXCLUSIVE`, or the
/// advisory lock every PostgreSQL writer of this schema takes.
enum WriteLock {
    Sqlite(SqliteBackend),
    Postgres(Box<PostgresBackend>),
}

/// The advisory lock `ascribe_store`'s PostgreSQL writers take, per schema.
const ADVISORY_KEY: &str = "hashtext('ascribe.ledger.' || current_schema())";

impl WriteLock {
    fn take(location: &DatabaseLocation) -> WriteLock {
        match location {
            DatabaseLocation::Sqlite(path) => {
                let mut backend = SqliteBackend::open(path).expect("opens");
                backend
                    .connection()
                    .execute_batch("BEGIN EXCLUSIVE")
                    .expect("locks");
                WriteLock::Sqlite(backend)
            }
            DatabaseLocation::Postgres(url) => {
                let mut backend = PostgresBackend::connect(url).expect("connects");
                let sql = format!("SELECT pg_advisory_lock({ADVISORY_KEY})");
                backend.client().batch_execute(&sql).expect("locks");
                WriteLock::Postgres(Box::new(backend))
            }
        }
    }

    fn release(self) {
        match self {
            WriteLock::Sqlite(mut backend) => {
                backend
                    .connection()
                    .execute_batch("ROLLBACK")
                    .expect("unlocks");
            }
            WriteLock::Postgres(mut backend) => {
                let sql = format!("SELECT pg_advisory_unlock({ADVISORY_KEY})");
                backend.client().batch_execute(&sql).expect("unlocks");
            }
        }
    }
}

/// Asks `/readyz` until it says `ready` (a check younger than half a second is reused, and
/// a blocked check takes two), at most ten seconds; `/healthz` must answer 200 every time.
fn readiness_becomes(gateway: &Gateway, ready: bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = gateway.call("GET", "/healthz", None, None);
        assert_eq!(health.status, StatusCode::OK, "{}", health.body);
        let answer = gateway.call("GET", "/readyz", None, None);
        let expected = if ready { 200 } else { 503 };
        if answer.status.as_u16() == expected {
            assert_eq!(answer.body["ready"], ready, "{}", answer.body);
            assert_eq!(
                answer.body["checks"]["ledger"]["ok"], ready,
                "{}",
                answer.body
            );
            assert_eq!(answer.body["checks"]["signing_key"]["ok"], true);
            return answer.body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered ready: {ready}: {}",
            answer.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The reason `/readyz` gives for the ledger.
fn ledger_reason(answer: &Value) -> &str {
    answer["checks"]["ledger"]["reason"].as_str().unwrap_or("")
}

fn readiness_reports_an_unwritable_ledger_and_recovers(store: Store) {
    let gateway = Gateway::start(store);
    let answer = gateway.call("GET", "/readyz", None, None);
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["ready"], true);
    assert_eq!(ledger_reason(&answer.body), "", "{}", answer.body);

    // Another writer holds the write lock: the check cannot finish.
    let lock = WriteLock::take(&gateway.location);
    let answer = readiness_becomes(&gateway, false);
    let reason = ledger_reason(&answer);
    assert!(reason.contains("did not complete a check"), "{reason}");
    lock.release();
    let answer = readiness_becomes(&gateway, true);
    assert!(
        answer["checks"]["ledger"]["last_write"].is_string(),
        "{answer}"
    );

    // The ledger cannot be written: the check fails, and says why.
    take_away(&gateway, ENTRIES_TABLE);
    let answer = readiness_becomes(&gateway, false);
    let reason = ledger_reason(&answer);
    assert!(
        reason.starts_with("the ledger cannot be written: "),
        "{reason}"
    );
    assert!(
        reason.contains("ledger_entries"),
        "names what failed: {reason}"
    );
    put_back(&gateway, ENTRIES_TABLE);
    let answer = readiness_becomes(&gateway, true);
    assert_eq!(ledger_reason(&answer), "", "{answer}");
}
on_both_stores!(readiness_reports_an_unwritable_ledger_and_recovers);

fn metrics_can_be_switched_off(store: Store) {
    let config = GatewayConfig {
        metrics: false,
        ..GatewayConfig::default()
    };
    let gateway = Gateway::start_with(store, config);
    let answer = gateway.call("GET", "/metrics", None, None);
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let health = gateway.call("GET", "/healthz", None, None);
    assert_eq!(
        health.status,
        StatusCode::OK,
        "the other open routes still answer"
    );
}
on_both_stores!(metrics_can_be_switched_off);
