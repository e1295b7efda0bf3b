//! A soak: `ascribe serve` under a sustained load at a fixed rate, on SQLite and on
//! PostgreSQL. A few callers take turns at slots paced by a clock ([`RATE`] calls a second,
//! whole answers and streams, OpenAI's and Anthropic's dialects) for `ASCRIBE_SOAK_SECONDS`
//! (default 20 s; `ASCRIBE_LONG_TESTS=1` makes it 600 s). Afterwards:
//!
//! - every call was answered 200, every stream read to its terminal event;
//! - the ledger holds exactly one `inference.recorded` per answered call (no more, no less)
//!   and one completed `inference.completed` per stream; `ascribe verify` passes;
//! - the gateway's memory and descriptors stayed flat. The rules, and why they do not
//!   flake:
//!   - descriptors are compared exactly, at two quiet moments: after a warm-up at the same
//!     load and after the soak, each time with the callers' clients dropped and the stand-in
//!     upstream told to stop accepting (which closes the keep-alive connections the gateway
//!     pools), so only what the gateway keeps for good (listener, log, database, runtime)
//!     is left.
//!     Ledger reads use one pooled connection (`limits.max_concurrent_reads = 1`), so the
//!     pool's size does not depend on how calls happened to overlap;
//!   - while the load runs, every sample every [`SAMPLE_EVERY`] has exactly the quiet
//!     count of descriptors that are not sockets, and at most [`SOCKETS_PER_CALLER`] more
//!     sockets per caller than when quiet (its connection to the gateway, the upstream
//!     connection of its call, one more pooled while the next call opens its own);
//!   - resident memory after the soak is within [`RSS_GROWTH_KIB`] of the value after the
//!     warm-up, both read when quiet. Allocator caches move RSS by a few MiB between
//!     runs (about 1.5 MiB was seen here); the bound is crossed by a leak of 8 KiB per call
//!     over the fast version's 2,300 calls, or of 300 bytes per call over the long
//!     version's 60,000.
//!
//! Wall time of the fast version: about 30 s per store.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ascribe_gateway::testing::StandInUpstream;
use reqwest::blocking::Client;
use serde_json::Value;

mod common;

use common::ledger::ledger_inferences;
use common::load::{client, header, request, stream_ended};
use common::process::{descriptors, pid_listening_on, port_of, tcp_table};
use common::{successor, Ascribe, Scenario, Server, CHAT, CLAUDE};

/// Calls a second, paced by the clock.
const RATE: u64 = 100;

/// Caller threads: at most this many calls at once.
const CALLERS: usize = 4;

/// The warm-up before the first quiet measurement.
const WARM_UP: Duration = Duration::from_secs(3);

/// How often memory and descriptors are read while the load runs.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Sockets a caller may account for while the load runs; see the module documentation.
const SOCKETS_PER_CALLER: usize = 3;

/// How far resident memory may grow from the warm-up to the end, in KiB.
const RSS_GROWTH_KIB: u64 = 16 * 1024;

/// How long the gateway may take to close its connections once callers and upstream left.
const SETTLE: Duration = Duration::from_secs(20);

const PROVIDER_KEY_VARIABLE: &str = "SOAK_ANTHROPIC_API_KEY";

const SCENARIOS: &[Scenario] = &[
    Scenario {
        alias: "chat",
        ..CHAT
    },
    Scenario {
        alias: "claude",
        ..CLAUDE
    },
];

fn soak_seconds() -> u64 {
    std::env::var("ASCRIBE_SOAK_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(if common::long() { 600 } else { 20 })
}

/// The gateway's resident memory in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// One reading of the gateway process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rss_kib: u64,
    fds: usize,
    sockets: usize,
}

fn sample(pid: u32) -> Sample {
    let (fds, sockets) = descriptors(pid);
    Sample {
        rss_kib: rss_kib(pid),
        fds,
        sockets: sockets.len(),
    }
}

/// The gateway's connections that involve callers (its own port) or the upstream.
fn traffic_connections(pid: u32, gateway_port: u16, upstream_port: u16) -> usize {
    let (_, sockets) = descriptors(pid);
    tcp_table(pid)
        .into_iter()
        .filter(|socket| sockets.contains(&socket.inode) && socket.state != "0A")
        .filter(|socket| socket.local_port == gateway_port || socket.remote_port == upstream_port)
        .count()
}

/// Waits until no caller or upstream connection is left, and two readings 300 ms apart
/// hold the same descriptors; returns the last reading.
fn quiet(pid: u32, gateway_port: u16, upstream_port: u16) -> Sample {
    let deadline = Instant::now() + SETTLE;
    let mut last = sample(pid);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = sample(pid);
        let idle = traffic_connections(pid, gateway_port, upstream_port) == 0;
        if (idle && now.fds == last.fds) || Instant::now() > deadline {
            assert!(idle, "connections still open after {SETTLE:?}");
            return now;
        }
        last = now;
    }
}

/// What one call got.
#[derive(Debug)]
struct Answered {
    stream: bool,
    status: u16,
    inference_id: Option<String>,
    /// Read to its end; for a stream, up to its terminal event.
    whole: bool,
}

fn call(client: &Client, base: &str, token: &str, slot: u64) -> Answered {
    let stream = slot % 2 == 1;
    let claude = slot % 4 >= 2;
    let alias = if claude { "claude" } else { "chat" };
    let prompt = format!("call {slot}");
    let Ok(response) = request(client, base, token, alias, stream, &prompt).send() else {
        return Answered {
            stream,
            status: 0,
            inference_id: None,
            whole: false,
        };
    };
    let status = response.status().as_u16();
    let inference_id = header(&response, "ascribe-inference-id");
    let body = response.text().ok();
    let whole = body.is_some_and(|body| match stream {
        false => serde_json::from_str::<Value>(&body).is_ok(),
        true => stream_ended(claude, &body),
    });
    Answered {
        stream,
        status,
        inference_id,
        whole,
    }
}

/// What a load run produced.
struct Run {
    answers: Vec<Answered>,
    samples: Vec<Sample>,
    /// How far behind its slot the latest call started.
    worst_lag: Duration,
    took: Duration,
}

/// `RATE * duration` calls, slot `n` starting at `n / RATE` seconds (or as soon as a caller
/// is free, when all are busy), from [`CALLERS`] threads with a client each; the gateway is
/// sampled every [`SAMPLE_EVERY`] meanwhile.
fn run_load(base: &str, token: &str, pid: u32, duration: Duration) -> Run {
    let slots = RATE * duration.as_secs();
    let period = Duration::from_secs(1) / u32::try_from(RATE).expect("rate");
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let answers = Mutex::new(Vec::new());
    let worst_lag = Mutex::new(Duration::ZERO);
    let samples = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let slept = Instant::now();
                while slept.elapsed() < SAMPLE_EVERY && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                samples.lock().expect("samples").push(sample(pid));
            }
        });
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                scope.spawn(|| {
                    let client = client(Duration::from_secs(30));
                    loop {
                        let slot = next.fetch_add(1, Ordering::SeqCst) as u64;
                        if slot >= slots {
                            return;
                        }
                        let due = start + period * u32::try_from(slot).expect("slot");
                        let now = Instant::now();
                        match due.checked_duration_since(now) {
                            Some(wait) => std::thread::sleep(wait),
                            None => {
                                let mut worst = worst_lag.lock().expect("lag");
                                *worst = (*worst).max(now - due);
                            }
                        }
                        let answer = call(&client, base, token, slot);
                        answers.lock().expect("answers").push(answer);
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().expect("caller");
        }
        done.store(true, Ordering::SeqCst);
    });
    Run {
        answers: answers.into_inner().expect("answers"),
        samples: samples.into_inner().expect("samples"),
        worst_lag: worst_lag.into_inner().expect("lag"),
        took: start.elapsed(),
    }
}

/// The two stores soak one after the other: each run has the machine's cores to itself.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn soak(store: &str, db: String) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = Instant::now();
    let seconds = soak_seconds();
    let home = tempfile::tempdir().expect("tempdir");
    let ascribe = Ascribe {
        home: home.path(),
        db: db.clone(),
    };
    let upstream = StandInUpstream::start().expect("stand-in");
    let upstream_address = upstream.address();
    let token = ascribe.init_with_scenarios(&upstream.base_url(), SCENARIOS, PROVIDER_KEY_VARIABLE);
    let env = [
        (PROVIDER_KEY_VARIABLE, "sk-ant-standin"),
        ("ASCRIBE_LIMITS_MAX_CONCURRENT_READS", "1"),
    ];
    let mut server = Server::start(&ascribe, &[], &env);
    let base = server.base.clone();
    let gateway_port = port_of(&base);
    let pid = pid_listening_on(gateway_port);

    let warm_up = run_load(&base, &token, pid, WARM_UP);
    upstream.stop_accepting();
    let start = quiet(pid, gateway_port, upstream_address.port());
    let start_sockets = start.sockets;

    let first = upstream;
    let upstream = successor(upstream_address);
    let run = run_load(&base, &token, pid, Duration::from_secs(seconds));
    upstream.stop_accepting();
    let end = quiet(pid, gateway_port, upstream_address.port());

    let answers: Vec<&Answered> = warm_up.answers.iter().chain(&run.answers).collect();
    let failed = answers
        .iter()
        .filter(|answer| answer.status != 200 || answer.inference_id.is_none() || !answer.whole)
        .count();
    let answered: Vec<&str> = answers
        .iter()
        .filter_map(|answer| answer.inference_id.as_deref())
        .collect();
    let (recorded, completed) = ledger_inferences(&db);
    let lost = answered
        .iter()
        .filter(|id| !recorded.contains_key(**id))
        .count();
    let streams = answers.iter().filter(|answer| answer.stream).count();
    let streams_completed = completed
        .values()
        .filter(|body| body["completed"] == true)
        .count();
    let max_sockets = run.samples.iter().map(|s| s.sockets).max().unwrap_or(0);
    let max_rss = run.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let odd_files: Vec<&Sample> = run
        .samples
        .iter()
        .filter(|s| s.fds - s.sockets != start.fds - start_sockets)
        .collect();

    drop((first, upstream));
    let status = server.terminate();
    assert!(status.success(), "exit {status}: {}", server.log());
    let report = ascribe.ok(&["verify", "--json"]);

    eprintln!(
        "reliability: test=soak store={store} seconds={seconds} rate={RATE} answered={} \
         recorded={} rss_start_kib={} rss_end_kib={} fds_start={} fds_end={} failed={failed} \
         records_lost={lost} rss_max_kib={max_rss} sockets_max={max_sockets} \
         worst_lag_ms={} run_s={:.1} wall_s={}",
        answered.len(),
        recorded.len(),
        start.rss_kib,
        end.rss_kib,
        start.fds,
        end.fds,
        run.worst_lag.as_millis(),
        run.took.as_secs_f64(),
        started.elapsed().as_secs()
    );
    assert_eq!(report["ok"], true, "{report}");
    let planned = RATE * (WARM_UP.as_secs() + seconds);
    assert_eq!(answers.len() as u64, planned, "every slot was called");
    assert_eq!(failed, 0, "every call answered in full");
    assert_eq!(lost, 0, "answers without a record");
    assert_eq!(
        recorded.len(),
        answered.len(),
        "one record per answer, no more"
    );
    assert_eq!(completed.len(), streams, "one completion per stream");
    assert_eq!(streams_completed, streams, "every stream completed");
    // The rate held: the calls took about their planned time. Half as long again, and five
    // seconds, are allowed for a machine shared with other work (a commit that waits on a
    // busy disk holds the callers back for a moment; they catch up on later slots).
    let planned_time = Duration::from_secs(seconds);
    assert!(
        run.took <= planned_time + planned_time / 2 + Duration::from_secs(5),
        "the load fell behind its rate: {seconds} s of calls took {:?}",
        run.took
    );
    assert_eq!(
        end.fds, start.fds,
        "descriptors when quiet, before and after"
    );
    assert!(
        odd_files.is_empty(),
        "descriptors that are not sockets changed: {odd_files:?}"
    );
    assert!(
        max_sockets <= start_sockets + SOCKETS_PER_CALLER * CALLERS,
        "{max_sockets} sockets under load, {start_sockets} when quiet"
    );
    assert!(
        end.rss_kib <= start.rss_kib + RSS_GROWTH_KIB,
        "resident memory grew from {} KiB to {} KiB",
        start.rss_kib,
        end.rss_kib
    );
}

#[test]
fn soak_on_sqlite() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", home.path().join("soak.db").display());
    soak("sqlite", db);
}

#[test]
fn soak_on_postgres() {
    soak("postgres", ascribe_store::testing::fresh_postgres_schema());
}
