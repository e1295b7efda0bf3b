//! Upstream faults through the real `ascribe serve` process: an upstream that never answers,
//! refuses the connection, resets it mid-stream (after a few events, or before any) or in the
//! middle of a whole answer, answers 429, 500, 503 or 529, sends a body that is not JSON, a
//! body larger than `upstream.max_response_bytes`, trickles a byte at a time (within
//! `upstream.deadline`, or far beyond it: a slow loris) or stalls.
//! Every fault runs on 3 callers at once. For each the test checks that
//!
//! - the caller gets the right status, in its dialect's error shape (for a stream cut after
//!   its first byte: a 200 whose body ends with a transport error, so the client sees it);
//! - the ledger holds the inference with that status and outcome (a cut stream: its
//!   completion entry says `truncated`, with the error), the served model never filled in
//!   for a failure, and the gateway's `ascribe_inferences_recorded_total` equals the
//!   ledger's count;
//! - nothing leaks: the gateway's open file descriptors, its TCP connections and the tasks
//!   alive on its runtime (`ascribe_runtime_alive_tasks` on `/metrics`) return to what they
//!   were before the faults.
//!
//! How "return to" is measured without flakiness: the gateway keeps idle keep-alive
//! connections to an upstream for as long as the upstream keeps them, so both
//! measurements, before and after the faults, are taken once the stand-in has been told to
//! stop accepting ([`StandInUpstream::stop_accepting`]): it closes its idle connections at
//! once (the gateway's pooled ones then close too) but keeps every connection whose answer
//! has not ended, and the `hang` and `stall` answers never end. So a connection the gateway
//! abandoned without closing it stays visible, as do its descriptor and its task. A
//! stand-in is started again on the same port for the faults. The callers' own connections
//! are closed by dropping their clients. Ledger reads use one pooled connection
//! (`limits.max_concurrent_reads = 1`), opened in the warm-up. What is left must be exactly
//! the baseline.
//!
//! Fast version: each of the 20 faults twice, about 25 s; `ASCRIBE_LONG_TESTS=1`: ten times.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use ascribe_gateway::testing::StandInUpstream;
use reqwest::blocking::Client;
use serde_json::Value;

mod common;

use common::ledger::ledger_inferences;
use common::load::{anthropic, header, request};
use common::process::{descriptors, pid_listening_on, port_of, tcp_table};
use common::{successor, Ascribe, Scenario, Server, CHAT, CLAUDE};

/// The variable the Anthropic deployments read their provider key from.
const PROVIDER_KEY_VARIABLE: &str = "UPSTREAM_FAULTS_ANTHROPIC_API_KEY";

/// `--upstream-timeout`: how long the gateway waits for headers, or for the next chunk.
const UPSTREAM_TIMEOUT: &str = "2s";

/// `upstream.deadline`: longer than the `trickle` answer takes (about a second), far shorter
/// than the `slow-loris` one (minutes), each of whose bytes comes within the timeout.
const UPSTREAM_DEADLINE: &str = "4s";

/// `upstream.max_response_bytes`: far below the stand-in's `huge` answers (8 MiB).
const MAX_RESPONSE_BYTES: &str = "1048576";

/// How long the gateway may take to close what a finished fault left open.
const SETTLE: Duration = Duration::from_secs(20);

/// Every alias is named after its stand-in scenario; all speak OpenAI's chat completions
/// except the Anthropic ones.
const SCENARIOS: &[Scenario] = &[
    openai("openai-chat"),
    openai("hang"),
    openai("openai-chat-cut"),
    openai("cut-early"),
    openai("openai-rate-limited"),
    openai("openai-server-error"),
    openai("openai-unavailable"),
    openai("unavailable-html"),
    openai("garbage"),
    openai("huge"),
    openai("huge-stream"),
    openai("trickle"),
    openai("slow-loris"),
    openai("stall"),
    openai("stall-stream"),
    Scenario {
        alias: "anthropic-messages",
        ..CLAUDE
    },
    Scenario {
        alias: "anthropic-overloaded",
        upstream_model: "anthropic-overloaded",
        ..CLAUDE
    },
];

const fn openai(name: &'static str) -> Scenario {
    Scenario {
        alias: name,
        upstream_model: name,
        ..CHAT
    }
}

/// What the caller must see, and the ledger must say, for one fault.
#[derive(Clone, Copy, Debug)]
struct Fault {
    alias: &'static str,
    stream: bool,
    /// The status the caller gets.
    status: u16,
    /// The `outcome` of the `inference.recorded` entry; its `status` is `status`.
    outcome: &'static str,
    /// The caller's body: whole (an answer or an error in the dialect's shape) or, for a
    /// stream cut after its first byte, ending without the terminal event.
    body: Body,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Body {
    /// A chat answer.
    Answer,
    /// An error in the dialect's shape, with this OpenAI `code` or Anthropic `type`.
    Error(Option<&'static str>),
    /// A stream cut after its identity was recorded: a completion entry with `truncated`.
    CutStream,
}

const FAULTS: &[Fault] = &[
    // The upstream never answers within --upstream-timeout.
    fault(
        "hang",
        false,
        504,
        "upstream_timeout",
        Body::Error(Some("upstream_timeout")),
    ),
    fault(
        "hang",
        true,
        504,
        "upstream_timeout",
        Body::Error(Some("upstream_timeout")),
    ),
    // Connection reset mid-stream, after some events.
    fault("openai-chat-cut", true, 200, "stream_open", Body::CutStream),
    // ... in the middle of a whole answer.
    fault(
        "openai-chat-cut",
        false,
        502,
        "upstream_unreachable",
        Body::Error(Some("upstream_error")),
    ),
    // ... before the first event of a stream.
    fault(
        "cut-early",
        true,
        502,
        "upstream_unreachable",
        Body::Error(Some("upstream_error")),
    ),
    // Provider errors, passed on in their own (OpenAI) shape.
    fault(
        "openai-rate-limited",
        false,
        429,
        "upstream_error",
        Body::Error(Some("rate_limit_exceeded")),
    ),
    fault(
        "openai-rate-limited",
        true,
        429,
        "upstream_error",
        Body::Error(Some("rate_limit_exceeded")),
    ),
    fault(
        "openai-server-error",
        false,
        500,
        "upstream_error",
        Body::Error(None),
    ),
    fault(
        "openai-unavailable",
        true,
        503,
        "upstream_error",
        Body::Error(None),
    ),
    fault(
        "anthropic-overloaded",
        false,
        529,
        "upstream_error",
        Body::Error(Some("overloaded_error")),
    ),
    // Bodies the gateway cannot read.
    fault(
        "garbage",
        false,
        502,
        "upstream_error",
        Body::Error(Some("upstream_error")),
    ),
    fault(
        "unavailable-html",
        false,
        502,
        "upstream_error",
        Body::Error(Some("upstream_error")),
    ),
    // Larger than upstream.max_response_bytes: a whole answer, and a stream whose padding
    // comes before any event names the served model.
    fault(
        "huge",
        false,
        502,
        "upstream_error",
        Body::Error(Some("upstream_error")),
    ),
    fault(
        "huge-stream",
        true,
        502,
        "upstream_error",
        Body::Error(Some("upstream_error")),
    ),
    // Slow loris: a byte at a time (each within the timeout) is answered when the whole
    // answer comes within upstream.deadline, and a timeout when it does not (whole, or a
    // stream before the event that names the served model); a stall mid-body, or
    // mid-stream, is a timeout.
    fault("trickle", false, 200, "answered", Body::Answer),
    fault(
        "slow-loris",
        false,
        504,
        "upstream_timeout",
        Body::Error(Some("upstream_timeout")),
    ),
    fault(
        "slow-loris",
        true,
        504,
        "upstream_timeout",
        Body::Error(Some("upstream_timeout")),
    ),
    fault(
        "stall",
        false,
        504,
        "upstream_timeout",
        Body::Error(Some("upstream_timeout")),
    ),
    fault("stall-stream", true, 200, "stream_open", Body::CutStream),
    // Nothing listens where the deployment points: the connection is refused.
    fault(
        "refused",
        false,
        502,
        "upstream_unreachable",
        Body::Error(Some("upstream_error")),
    ),
];

const fn fault(
    alias: &'static str,
    stream: bool,
    status: u16,
    outcome: &'static str,
    body: Body,
) -> Fault {
    Fault {
        alias,
        stream,
        status,
        outcome,
        body,
    }
}

/// Calls run at once.
const CALLERS: usize = 3;

fn client() -> Client {
    common::load::client(Duration::from_secs(30))
}

/// What a caller got back.
#[derive(Debug)]
struct Got {
    fault: Fault,
    status: u16,
    inference_id: Option<String>,
    retry_after: Option<String>,
    body: String,
    /// The body was read to its end without a transport error.
    read_whole: bool,
}

fn call(client: &Client, base: &str, token: &str, fault: Fault) -> Got {
    let response = request(client, base, token, fault.alias, fault.stream, "hi")
        .send()
        .expect("the gateway answers");
    let inference_id = header(&response, "ascribe-inference-id");
    let retry_after = header(&response, "retry-after");
    let status = response.status().as_u16();
    let (body, read_whole) = match response.bytes() {
        Ok(body) => (String::from_utf8_lossy(&body).into_owned(), true),
        Err(_) => (String::new(), false),
    };
    Got {
        fault,
        status,
        inference_id,
        retry_after,
        body,
        read_whole,
    }
}

/// Checks what the caller got; returns the problem, if any.
fn check_answer(got: &Got) -> Result<(), String> {
    let fault = got.fault;
    if got.status != fault.status {
        return Err(format!("status {} != {}", got.status, fault.status));
    }
    if got.inference_id.is_none() {
        return Err("no Ascribe-Inference-Id".to_owned());
    }
    match fault.body {
        Body::Answer => {
            let answer: Value = serde_json::from_str(&got.body).map_err(|e| e.to_string())?;
            if answer["choices"][0]["message"]["content"].is_string() && got.read_whole {
                Ok(())
            } else {
                Err(format!("not a chat answer: {}", got.body))
            }
        }
        // The gateway ends the caller's body with an error, so a client sees the cut.
        Body::CutStream => match got.read_whole {
            true => Err(format!("a cut stream ended cleanly: {}", got.body)),
            false => Ok(()),
        },
        Body::Error(code) => {
            let error: Value = serde_json::from_str(&got.body)
                .map_err(|e| format!("error body is not JSON ({e}): {}", got.body))?;
            let anthropic = anthropic(fault.alias);
            let shaped = match anthropic {
                true => error["type"] == "error" && error["error"]["message"].is_string(),
                false => error["error"]["message"].is_string(),
            };
            let named = match anthropic {
                true => code.is_none_or(|code| error["error"]["type"] == code),
                false => code.is_none_or(|code| error["error"]["code"] == code),
            };
            match shaped && named {
                true => Ok(()),
                false => Err(format!("not the dialect's error ({code:?}): {error}")),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The gateway process: descriptors, connections, tasks
// ---------------------------------------------------------------------------------------

/// What the gateway holds at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holdings {
    fds: usize,
    /// Its TCP sockets that are not listening: (local port, remote port, state).
    connections: Vec<(u16, u16, String)>,
    alive_tasks: i64,
}

fn holdings(pid: u32, base: &str) -> Holdings {
    let alive_tasks = alive_tasks(base);
    let (fds, sockets) = descriptors(pid);
    let mut connections: Vec<(u16, u16, String)> = tcp_table(pid)
        .into_iter()
        .filter(|socket| sockets.contains(&socket.inode) && socket.state != "0A")
        .map(|socket| (socket.local_port, socket.remote_port, socket.state))
        .collect();
    connections.sort();
    Holdings {
        fds,
        connections,
        alive_tasks,
    }
}

/// `ascribe_runtime_alive_tasks` from `/metrics`, on a connection of its own that the
/// gateway closes once it answered (so the scrape's own task is gone by the next one).
fn alive_tasks(base: &str) -> i64 {
    let address = SocketAddr::from_str(base.trim_start_matches("http://")).expect("address");
    let mut connection = TcpStream::connect(address).expect("connects");
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = "GET /metrics HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n";
    connection.write_all(request.as_bytes()).expect("sent");
    let mut answer = String::new();
    connection.read_to_string(&mut answer).expect("read");
    answer
        .lines()
        .find_map(|line| line.strip_prefix("ascribe_runtime_alive_tasks "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ascribe_runtime_alive_tasks in {answer}"))
}

/// Waits until the gateway holds no connection (nothing is left to close) and two
/// readings 300 ms apart agree; returns the last one.
fn quiet(pid: u32, base: &str) -> Holdings {
    let deadline = Instant::now() + SETTLE;
    let mut last = holdings(pid, base);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = holdings(pid, base);
        if now == last && now.connections.is_empty() {
            return now;
        }
        if Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Waits, at most [`SETTLE`], for the gateway to hold exactly `baseline` again.
fn settle_to(pid: u32, base: &str, baseline: &Holdings) -> Holdings {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = holdings(pid, base);
        if &now == baseline || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------

/// Checks the ledger's record of one call; returns the problem, if any.
fn check_record(
    got: &Got,
    recorded: &BTreeMap<String, Value>,
    completed: &BTreeMap<String, Value>,
) -> Result<(), String> {
    let id = got.inference_id.as_deref().unwrap_or_default();
    let Some(record) = recorded.get(id) else {
        return Err(format!("{id} is not in the ledger"));
    };
    let fault = got.fault;
    let want = (Some(u64::from(fault.status)), Some(fault.outcome));
    if (record["status"].as_u64(), record["outcome"].as_str()) != want {
        return Err(format!("recorded as {record}"));
    }
    if record["alias"] != fault.alias || record["stream"] != fault.stream {
        return Err(format!("recorded as {record}"));
    }
    let failed = !matches!(fault.body, Body::Answer | Body::CutStream);
    if failed && record["served"]["model"] != Value::Null {
        return Err(format!("served model filled in for a failure: {record}"));
    }
    if failed && !record["error"].is_string() {
        return Err(format!("no error recorded: {record}"));
    }
    let completion = completed.get(id);
    match (fault.body, completion) {
        (Body::CutStream, Some(done)) if done["truncated"] == true && done["error"].is_string() => {
            Ok(())
        }
        (Body::CutStream, other) => Err(format!("cut stream's completion: {other:?}")),
        (_, None) => Ok(()),
        (_, Some(done)) => Err(format!(
            "a completion for a call that was no stream: {done}"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

/// Calls every fault `rounds` times from [`CALLERS`] threads; returns what they got.
fn run_faults(base: &str, token: &str, faults: &[Fault], rounds: usize) -> Vec<Got> {
    let calls: Vec<Fault> = (0..rounds).flat_map(|_| faults.iter().copied()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let got = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..CALLERS {
            scope.spawn(|| {
                let client = client();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(fault) = calls.get(n) else {
                        return;
                    };
                    let answer = call(&client, base, token, *fault);
                    got.lock().expect("answers").push(answer);
                }
            });
        }
    });
    got.into_inner().expect("answers")
}

/// Registers alias `refused` on a deployment at a loopback port where nothing listens.
fn register_refused(ascribe: &Ascribe<'_>) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let base_url = format!("http://{}/v1", closed.local_addr().expect("address"));
    drop(closed);
    let checkpoint = ["checkpoint", "register", "--provider", "standin"];
    ascribe.ok(&[&checkpoint[..], &["--snapshot", "refused", "--json"]].concat());
    ascribe.ok(&[
        "deployment",
        "register",
        "refused",
        "--checkpoint",
        "standin:refused",
        "--dialect",
        "openai-compatible",
        "--base-url",
        &base_url,
        "--upstream-model",
        "refused",
        "--expect-served",
        "gpt-4o*",
        "--json",
    ]);
    ascribe.ok(&["alias", "create", "refused", "--to", "refused", "--json"]);
}

/// `ascribe_inferences_recorded_total` from `/metrics`.
fn inferences_recorded_metric(base: &str) -> u64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .and_then(|response| response.text())
        .expect("metrics");
    text.lines()
        .find_map(|line| line.strip_prefix("ascribe_inferences_recorded_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .unwrap_or_else(|| panic!("no ascribe_inferences_recorded_total in {text}"))
}

#[test]
fn upstream_faults_are_answered_recorded_and_leak_nothing() {
    let started = Instant::now();
    let home = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", home.path().join("ledger.db").display());
    let ascribe = Ascribe {
        home: home.path(),
        db: db.clone(),
    };
    let upstream = StandInUpstream::start().expect("stand-in");
    let address = upstream.address();
    let token = ascribe.init_with_scenarios(&upstream.base_url(), SCENARIOS, PROVIDER_KEY_VARIABLE);
    register_refused(&ascribe);
    // The Anthropic deployments read a provider key; the stand-in takes any.
    let env = [
        (PROVIDER_KEY_VARIABLE, "sk-ant-standin"),
        ("ASCRIBE_UPSTREAM_MAX_RESPONSE_BYTES", MAX_RESPONSE_BYTES),
        ("ASCRIBE_UPSTREAM_DEADLINE", UPSTREAM_DEADLINE),
        ("ASCRIBE_LIMITS_MAX_CONCURRENT_READS", "1"),
    ];
    let mut server = Server::start(&ascribe, &["--upstream-timeout", UPSTREAM_TIMEOUT], &env);
    let base = server.base.clone();
    let pid = pid_listening_on(port_of(&base));

    // Warm up with good answers and every fault once, so that what the gateway opens once
    // (its read connection, the upstream client's pool) exists before the baseline.
    let warm_up: Vec<Fault> = [
        fault("openai-chat", false, 200, "answered", Body::Answer),
        fault("openai-chat", true, 200, "stream_open", Body::Answer),
        fault("anthropic-messages", false, 200, "answered", Body::Answer),
        fault("anthropic-messages", true, 200, "stream_open", Body::Answer),
    ]
    .into_iter()
    .chain(FAULTS.iter().copied())
    .collect();
    let warmed = run_faults(&base, &token, &warm_up, 1);
    assert!(
        warmed.iter().all(|got| got.inference_id.is_some()),
        "{warmed:?}"
    );
    upstream.stop_accepting();
    let baseline = quiet(pid, &base);
    assert!(
        baseline.connections.is_empty(),
        "connections still open with no upstream and no caller: {baseline:?}"
    );

    let first = upstream;
    let upstream = successor(address);
    let rounds = if common::long() { 10 } else { 2 };
    let got = run_faults(&base, &token, FAULTS, rounds);
    let during = holdings(pid, &base);
    upstream.stop_accepting();
    let after = settle_to(pid, &base, &baseline);

    let recorded_metric = inferences_recorded_metric(&base);
    let (recorded, completed) = ledger_inferences(&db);
    let mut problems = Vec::new();
    for answer in &got {
        let fault = answer.fault;
        if let Err(problem) = check_answer(answer) {
            problems.push(format!("{fault:?}: caller: {problem}"));
        }
        if let Err(problem) = check_record(answer, &recorded, &completed) {
            problems.push(format!("{fault:?}: ledger: {problem}"));
        }
        if fault.alias == "openai-rate-limited" && answer.retry_after.as_deref() != Some("7") {
            problems.push(format!("{fault:?}: retry-after {:?}", answer.retry_after));
        }
    }
    let records_lost = got
        .iter()
        .filter(|answer| {
            answer
                .inference_id
                .as_ref()
                .is_none_or(|id| !recorded.contains_key(id))
        })
        .count();
    let leaked_fds = after.fds.saturating_sub(baseline.fds);
    let leaked_tasks = (after.alive_tasks - baseline.alive_tasks).max(0);
    let leaked_connections = after.connections.len();
    eprintln!(
        "reliability: test=upstream_faults store=sqlite faults={} records_lost={records_lost} \
         leaked_fds={leaked_fds} leaked_tasks={leaked_tasks} \
         leaked_connections={leaked_connections} kinds={} wall_s={}",
        got.len(),
        FAULTS.len(),
        started.elapsed().as_secs()
    );
    eprintln!("baseline {baseline:?}; during the faults {during:?}; after {after:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(got.len(), rounds * FAULTS.len());
    assert_eq!(records_lost, 0);
    // The gateway's own count agrees with its ledger (warm-up included).
    assert_eq!(recorded_metric, recorded.len() as u64);
    assert_eq!(recorded.len(), warmed.len() + got.len());
    assert_eq!(
        after, baseline,
        "the gateway holds more than before the faults"
    );
    assert_eq!(leaked_fds, 0);
    assert_eq!(leaked_tasks, 0);
    assert_eq!(leaked_connections, 0);

    let status = server.terminate();
    assert!(status.success(), "exit {status}: {}", server.log());
    let report = ascribe.ok(&["verify", "--json"]);
    assert_eq!(report["ok"], true, "{report}");
    drop((first, upstream));
}
