//! The latency the gateway adds to a call, against calling the upstream directly. Prints
//! figures; asserts nothing about speed, only that every answer the gateway released was
//! recorded in its ledger.
//!
//! Run with `cargo bench -p ascribe-gateway --features testing --bench overhead`.
//!
//! A stand-in upstream (`ascribe_gateway::testing`) and the gateway (`ascribe_gateway::serve`
//! on 127.0.0.1) run in this process, each on a runtime of its own; a third runtime drives
//! the load: `reqwest` over keep-alive connections, a fixed number of identical chat
//! completions at a fixed concurrency, after a warm-up of 200 calls. Each round measures the
//! upstream directly (model `openai-chat`) and then through the gateway (alias `v1`), so the
//! added latency compares two runs made moments apart. The ledger is a SQLite file in a
//! temporary directory, then a fresh schema on the PostgreSQL server of
//! `ASCRIBE_TEST_POSTGRES` (default: local).
//!
//! For each store and round it prints the disk's fsync latency (4 KiB write + fdatasync,
//! median of 200, next to the SQLite ledger), then one line per concurrency and target:
//! calls, successful calls, p50 and p99 latency in ms, calls/s. Under each gateway line: the
//! added latency (gateway minus direct, p50 and p99) and how many `inference.recorded`
//! entries the ledger gained against how many answers were released (warm-up included).
//! Streamed calls (`"stream": true`, alias `v1-stream`) are timed to their first body byte, at
//! concurrency 1; their `inference.completed` entries are counted too. The stand-in paces its
//! events 2 ms apart on sockets without `TCP_NODELAY`, so its first event often waits for a
//! delayed ACK (about 40 ms): read the gateway's time to first byte against the direct one,
//! not against zero. A summary gives the median and range over rounds, and the goal: added
//! p50 at concurrency 1 within 2 x fsync + 0.2 ms.
//!
//! Environment: `ASCRIBE_BENCH_ROUNDS` (default 3); `ASCRIBE_BENCH_REQUESTS` (default 2000)
//! calls at concurrency 1, ten times as many at any other; `ASCRIBE_BENCH_CONCURRENCY`
//! (default `1,64`); `ASCRIBE_BENCH_STREAMS` (default 200) streamed calls;
//! `ASCRIBE_BENCH_STORES` (default `sqlite,postgres`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ascribe_access::{create_key, new_token, Role};
use ascribe_gateway::testing::StandInUpstream;
use ascribe_gateway::{AppState, GatewayConfig};
use ascribe_ledger::NoteSigner;
use ascribe_store::{
    open_backend, query, DatabaseLocation, Ledger, SqlValue, SystemClock, TreeHeadPolicy,
};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The entry each call writes before its answer is released.
const RECORDED: &str = "inference.recorded";

/// The entry a streamed call writes after its last byte.
const COMPLETED: &str = "inference.completed";

/// Calls sent before each measured run, at the run's concurrency, and not counted.
const WARM_UP: usize = 200;

/// How long streamed calls may take to record their completion after their last byte.
const COMPLETION_WAIT: Duration = Duration::from_secs(5);

fn main() {
    let rounds = setting("ASCRIBE_BENCH_ROUNDS", 3).max(1);
    let requests = setting("ASCRIBE_BENCH_REQUESTS", 2000).max(1);
    let streams = setting("ASCRIBE_BENCH_STREAMS", 200).max(1);
    let stores = list("ASCRIBE_BENCH_STORES", "sqlite,postgres");
    let levels: Vec<usize> = list("ASCRIBE_BENCH_CONCURRENCY", "1,64")
        .iter()
        .map(|level| level.parse().expect("a concurrency is a number"))
        .collect();
    let directory = tempfile::tempdir().expect("tempdir");

    let upstream = StandInUpstream::start().expect("stand-in starts");
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("load runtime");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    let mut summary: Vec<(String, usize, &str, Added)> = Vec::new();
    let mut fsyncs = Vec::new();
    for store in &stores {
        let location = match store.as_str() {
            "sqlite" => DatabaseLocation::Sqlite(directory.path().join("ledger.db")),
            "postgres" => ascribe_store::testing::fresh_postgres_schema()
                .parse()
                .expect("postgres url"),
            other => panic!("unknown store `{other}`: sqlite or postgres"),
        };
        let gateway = Gateway::start(location, &upstream, &load, &client);
        let direct = Target {
            url: format!("{}/chat/completions", upstream.base_url()),
            model: "openai-chat",
            token: None,
        };
        let through = |model| Target {
            url: format!("{}/v1/chat/completions", gateway.base_url),
            model,
            token: Some(gateway.caller.clone()),
        };
        let (via_gateway, via_gateway_streamed) = (through("v1"), through("v1-stream"));
        println!(
            "{store}\n  {:<5} {:>5} {:<14} {:>6} {:>6} {:>8} {:>8} {:>8}",
            "round", "conc", "target", "calls", "ok", "p50 ms", "p99 ms", "req/s"
        );
        for round in 1..=rounds {
            let fsync = ascribe_store::testing::fsync_median_ms(directory.path());
            fsyncs.push(fsync);
            println!("  {round:<5} fsync (4 KiB write + fdatasync), median: {fsync:.3} ms");
            for &concurrency in &levels {
                let calls = if concurrency == 1 {
                    requests
                } else {
                    requests * 10
                };
                let mode = Mode::Whole;
                let base = run(&load, &client, &direct, mode, concurrency, calls);
                base.print(round, concurrency, "direct");
                let before = gateway.count(RECORDED);
                let measured = run(&load, &client, &via_gateway, mode, concurrency, calls);
                let recorded = gateway.count(RECORDED) - before;
                measured.print(round, concurrency, "gateway");
                let added = measured.added_over(&base, recorded, fsync);
                summary.push((store.clone(), concurrency, "whole", added));
            }
            let mode = Mode::FirstByte;
            let base = run(&load, &client, &direct, mode, 1, streams);
            base.print(round, 1, "direct ttfb");
            let before = (gateway.count(RECORDED), gateway.count(COMPLETED));
            let measured = run(&load, &client, &via_gateway_streamed, mode, 1, streams);
            let recorded = gateway.count(RECORDED) - before.0;
            measured.print(round, 1, "gateway ttfb");
            let added = measured.added_over(&base, recorded, fsync);
            let completed = gateway.count_until(COMPLETED, before.1 + added.ok) - before.1;
            println!(
                "  {:<26} completion entries: {completed} of {} streams",
                "", added.ok
            );
            summary.push((store.clone(), 1, "ttfb", added));
        }
        gateway.stop();
    }

    println!("summary over {rounds} rounds: median [min, max]");
    println!(
        "  {:<8} {:>4} {:<5} {:>22} {:>22} {:>18} {:>8}",
        "store", "conc", "kind", "added p50 ms", "added p99 ms", "gateway req/s", "recorded"
    );
    let mut all_recorded = true;
    let mut goals = Vec::new();
    for store in &stores {
        for (concurrency, kind) in levels.iter().map(|&c| (c, "whole")).chain([(1, "ttfb")]) {
            let rows: Vec<&Added> = summary
                .iter()
                .filter(|(s, c, k, _)| s == store && *c == concurrency && *k == kind)
                .map(|(_, _, _, added)| added)
                .collect();
            let recorded = rows.iter().all(|added| added.recorded == added.ok);
            all_recorded &= recorded;
            println!(
                "  {store:<8} {concurrency:>4} {kind:<5} {:>22} {:>22} {:>18} {:>8}",
                spread(rows.iter().map(|added| added.p50), 3),
                spread(rows.iter().map(|added| added.p99), 3),
                spread(rows.iter().map(|added| added.rate), 0),
                if recorded { "all" } else { "MISMATCH" }
            );
            if concurrency == 1 && kind == "whole" {
                let rounds: Vec<String> = rows
                    .iter()
                    .map(|added| format!("{:.3} vs {:.3}", added.p50, added.goal))
                    .collect();
                let met = rows.iter().filter(|added| added.p50 <= added.goal).count();
                goals.push(format!(
                    "  {store:<8} met in {met} of {} rounds ({})",
                    rows.len(),
                    rounds.join(", ")
                ));
            }
        }
    }
    println!("goal: added p50 at concurrency 1 <= 2 x that round's fsync + 0.2 ms");
    for goal in goals {
        println!("{goal}");
    }
    println!(
        "fsync (4 KiB write + fdatasync), medians of the rounds: {} ms",
        spread(fsyncs.into_iter(), 3)
    );
    drop(client);
    drop(load);
    assert!(all_recorded, "an answer was released without its record");
}

/// A comma-separated list from the environment, or `default`.
fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A number from the environment, or `default`.
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The gateway, serving on a loopback socket from a runtime of its own.
struct Gateway {
    base_url: String,
    caller: String,
    location: DatabaseLocation,
    runtime: Runtime,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// A fresh ledger with an admin and a caller key, the gateway serving it, and through its
    /// admin API a checkpoint, two deployments on the stand-in and aliases `v1` (whole
    /// answers) and `v1-stream` (streams: the stream fixture serves another snapshot).
    fn start(
        location: DatabaseLocation,
        upstream: &StandInUpstream,
        load: &Runtime,
        client: &reqwest::Client,
    ) -> Gateway {
        let signer = NoteSigner::from_seed("ascribe.bench/gateway", [3; 32]);
        let mut backend = open_backend(&location, true).expect("opens");
        Ledger::init(backend.as_mut(), &signer).expect("init");
        ascribe_access::create_tables(backend.as_mut()).expect("access tables");
        ascribe_registry::create_tables(backend.as_mut()).expect("registry tables");
        ascribe_inference::create_tables(backend.as_mut()).expect("inference tables");
        let (admin, caller) = (new_token().expect("token"), new_token().expect("token"));
        let keys = [
            create_key("bench-admin", Role::Admin, &admin.token_sha256, "bench"),
            create_key("bench-app", Role::Caller, &caller.token_sha256, "bench"),
        ];
        let policy = TreeHeadPolicy::EveryBatch;
        let mut ledger =
            Ledger::open(backend, signer.clone(), Box::new(SystemClock), policy).expect("ledger");
        ledger.add_projection(Box::new(ascribe_access::AccessKeysProjection));
        for outcome in ledger.append_batch(&keys).expect("appends") {
            outcome.expect("accepted");
        }
        drop(ledger);

        // Opened outside any runtime: the PostgreSQL client blocks on a runtime of its own.
        let state = AppState::open_with(&location, signer, GatewayConfig::default())
            .expect("gateway state");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("gateway runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binds");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let served = runtime.spawn(ascribe_gateway::serve(listener, state, async move {
            let _ = stopped.await;
        }));

        let admin_post = |path: &str, body: Value| {
            let request = client
                .post(format!("{base_url}/admin/v1/{path}"))
                .bearer_auth(&admin.token)
                .json(&body);
            let response = load.block_on(request.send()).expect("admin call");
            let status = response.status();
            let text = load.block_on(response.text()).unwrap_or_default();
            assert_eq!(status.as_u16(), 201, "POST {path}: {text}");
        };
        admin_post(
            "checkpoints",
            json!({"provider": "standin", "snapshot": "openai-chat"}),
        );
        for (name, served) in [
            ("v1", "gpt-4o-2024-08-06"),
            ("v1-stream", "gpt-4o-mini-2024-07-18"),
        ] {
            let deployment = json!({
                "name": format!("standin-{name}"),
                "checkpoint": "standin:openai-chat",
                "dialect": "openai-compatible",
                "base_url": upstream.base_url(),
                "upstream_model": "openai-chat",
                "expect_served": served,
            });
            admin_post("deployments", deployment);
            let alias = json!({"name": name, "deployment": format!("standin-{name}")});
            admin_post("aliases", alias);
        }
        Gateway {
            base_url,
            caller: caller.token,
            location,
            runtime,
            stop,
            served,
        }
    }

    /// How many entries of `kind` the ledger holds, read on a connection of its own. Call it
    /// outside any runtime: the PostgreSQL client blocks on a runtime of its own.
    fn count(&self, kind: &str) -> usize {
        let mut backend = open_backend(&self.location, false).expect("opens");
        let count = query::read(backend.as_mut(), |tx| {
            let row = tx.query_row(
                "SELECT COUNT(*) FROM ledger_entries WHERE kind = $1",
                &[SqlValue::from(kind)],
            )?;
            row.map_or(Ok(0), |row| row[0].count("count"))
        })
        .expect("counts");
        usize::try_from(count).expect("fits")
    }

    /// [`Gateway::count`] once it reaches `target`, or after [`COMPLETION_WAIT`].
    fn count_until(&self, kind: &str, target: usize) -> usize {
        let begun = Instant::now();
        loop {
            let count = self.count(kind);
            if count >= target || begun.elapsed() > COMPLETION_WAIT {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops serving; the writer commits what is queued and signs a last tree head.
    fn stop(self) {
        // Idle keep-alive connections end with the graceful shutdown.
        let _ = self.stop.send(());
        let served = self.runtime.block_on(self.served);
        served.expect("serve task").expect("serves");
    }
}

/// Where calls go.
struct Target {
    url: String,
    model: &'static str,
    token: Option<String>,
}

/// What a call's latency is measured to.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The whole answer, `"stream": false`.
    Whole,
    /// The first body byte of `"stream": true`; the rest is read, not timed.
    FirstByte,
}

/// The outcome of one run.
struct Run {
    calls: usize,
    ok: usize,
    /// Successful calls among the warm-up and the run, for the recorded-entry check.
    ok_with_warm_up: usize,
    /// Latencies of the successful calls, sorted, in ms.
    latencies: Vec<f64>,
    seconds: f64,
}

/// The gateway's run against the direct one.
struct Added {
    p50: f64,
    p99: f64,
    rate: f64,
    ok: usize,
    recorded: usize,
    /// 2 x the round's fsync latency + 0.2 ms.
    goal: f64,
}

impl Run {
    fn percentile(&self, fraction: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = (fraction * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn rate(&self) -> f64 {
        self.calls as f64 / self.seconds
    }

    fn print(&self, round: usize, concurrency: usize, target: &str) {
        println!(
            "  {round:<5} {concurrency:>5} {target:<14} {:>6} {:>6} {:>8.3} {:>8.3} {:>8.0}",
            self.calls,
            self.ok,
            self.percentile(0.50),
            self.percentile(0.99),
            self.rate()
        );
    }

    /// Prints and returns the added latency; `recorded` is how many `inference.recorded`
    /// entries the warm-up and the run added.
    fn added_over(&self, direct: &Run, recorded: usize, fsync: f64) -> Added {
        let added = Added {
            p50: self.percentile(0.50) - direct.percentile(0.50),
            p99: self.percentile(0.99) - direct.percentile(0.99),
            rate: self.rate(),
            ok: self.ok_with_warm_up,
            recorded,
            goal: 2.0 * fsync + 0.2,
        };
        println!(
            "  {:<26} added p50 {:.3} ms, p99 {:.3} ms; recorded {} of {} answers{}",
            "",
            added.p50,
            added.p99,
            added.recorded,
            added.ok,
            if added.recorded == added.ok {
                ""
            } else {
                " MISMATCH"
            }
        );
        added
    }
}

/// Warms up, then sends `calls` identical calls to `target` from `concurrency` tasks.
fn run(
    load: &Runtime,
    client: &reqwest::Client,
    target: &Target,
    mode: Mode,
    concurrency: usize,
    calls: usize,
) -> Run {
    let body = json!({
        "model": target.model,
        "stream": mode == Mode::FirstByte,
        "messages": [{"role": "user", "content": "Say hello."}],
    })
    .to_string();
    let request = || {
        let mut request = client
            .post(&target.url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(token) = &target.token {
            request = request.bearer_auth(token);
        }
        request
    };
    load.block_on(async {
        let warm_up = send_all(&request, mode, concurrency, WARM_UP.min(calls)).await;
        let begun = Instant::now();
        let timed = send_all(&request, mode, concurrency, calls).await;
        let seconds = begun.elapsed().as_secs_f64();
        let mut latencies = timed;
        let ok = latencies.len();
        latencies.sort_by(f64::total_cmp);
        Run {
            calls,
            ok,
            ok_with_warm_up: ok + warm_up.len(),
            latencies,
            seconds,
        }
    })
}

/// Sends `calls` calls from `concurrency` tasks sharing one counter; returns the latency of
/// each successful call, in ms.
async fn send_all(
    request: &(impl Fn() -> reqwest::RequestBuilder + Sync),
    mode: Mode,
    concurrency: usize,
    calls: usize,
) -> Vec<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = Arc::clone(&next);
            async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    if let Some(latency) = one_call(request(), mode).await {
                        latencies.push(latency);
                    }
                }
                latencies
            }
        })
        .collect();
    futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One call, read to its end; its latency in ms when it succeeded.
async fn one_call(request: reqwest::RequestBuilder, mode: Mode) -> Option<f64> {
    let begun = Instant::now();
    let mut response = request.send().await.ok()?;
    let success = response.status().is_success();
    let mut latency = None;
    while let Some(chunk) = response.chunk().await.ok()? {
        if mode == Mode::FirstByte && latency.is_none() && !chunk.is_empty() {
            latency = Some(begun.elapsed());
        }
    }
    let latency = latency.unwrap_or_else(|| begun.elapsed());
    success.then_some(latency.as_secs_f64() * 1e3)
}

/// "median [min, max]" of `values`.
fn spread(values: impl Iterator<Item = f64>, decimals: usize) -> String {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let (first, last) = (values[0], values[values.len() - 1]);
    let middle = median(values);
    format!("{middle:.decimals$} [{first:.decimals$}, {last:.decimals$}]")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
