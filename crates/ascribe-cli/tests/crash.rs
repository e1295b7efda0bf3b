//! `ascribe serve` crashing, and its database crashing, under concurrent load: real processes,
//! real HTTP, a stand-in upstream, callers in both dialects taking whole answers and streams.
//! These tests prove that
//!
//! - a gateway killed with SIGKILL at a random moment and restarted on the same ledger, round
//!   after round, never loses a record: every answer a caller got with an
//!   `Ascribe-Inference-Id` (even one whose body the kill cut) has its inference entry, no
//!   entry is torn, the seqs are contiguous and `ascribe verify` passes, on SQLite and on
//!   PostgreSQL;
//! - a PostgreSQL server of the test's own, stopped (`pg_ctl stop -m immediate`) under load,
//!   makes the gateway answer 503 in the caller's dialect and release nothing unrecorded;
//!   when the server comes back the same gateway process answers and records again by
//!   itself, with no refusal once it answered again, and after a restart during which no
//!   call came (every kept connection stale) the very first calls are answered.
//!
//! A stream's completion entry is written after its last byte left, so a kill right after
//! may take it: a stream that ended more than [`COMPLETION_GRACE`] before a kill must have
//! its completion, and the others are counted.
//!
//! The fast versions take 15 to 20 s on two cores (the three tests run in parallel);
//! `ASCRIBE_LONG_TESTS=1` runs 20 kill rounds per store and 10 PostgreSQL restarts, about a
//! minute. The random kill moments come from a seed printed on stderr; set
//! `ASCRIBE_TEST_SEED` to replay one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ascribe_gateway::testing::StandInUpstream;
use ascribe_store::{open_backend, query, DatabaseLocation};
use reqwest::blocking::Client;
use serde_json::Value;

mod common;

use common::ledger::{untorn, Schema};
use common::load::{anthropic, MIX};
use common::{long, Ascribe, Scenario, Server, CHAT, CLAUDE, PACED};

/// The variable the Anthropic deployment reads its provider key from, and that key.
const PROVIDER_KEY_VARIABLE: &str = "CRASH_TEST_ANTHROPIC_API_KEY";
const PROVIDER_KEY: &str = "sk-ant-provider-crash-test-5d0e";

/// Each caller cycles through [`MIX`] over these; `paced-v1` keeps calls in flight.
const SCENARIOS: &[Scenario] = &[CHAT, CLAUDE, PACED];

/// Caller threads per gateway.
const CALLERS: usize = 6;

// ---------------------------------------------------------------------------------------
// Randomness that can be replayed
// ---------------------------------------------------------------------------------------

/// SplitMix64: small, seedable, good enough to pick moments.
struct Rng(u64);

impl Rng {
    /// Seeded from `ASCRIBE_TEST_SEED` when set, else from the clock; the seed is printed.
    fn from_env(test: &str) -> (Rng, u64) {
        let seed = match std::env::var("ASCRIBE_TEST_SEED") {
            Ok(text) => text.parse().expect("ASCRIBE_TEST_SEED is a number"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos() as u64,
        };
        eprintln!("{test}: seed {seed} (replay with ASCRIBE_TEST_SEED={seed})");
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, bound)`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

// ---------------------------------------------------------------------------------------
// A ledger with the scenarios, and callers
// ---------------------------------------------------------------------------------------

/// A ledger in a temporary home with a caller key and the [`SCENARIOS`] on a stand-in.
struct Setup {
    home: tempfile::TempDir,
    db: String,
    /// Serves the deployments as long as the setup lives.
    _upstream: StandInUpstream,
    token: String,
}

impl Setup {
    fn new(db: impl FnOnce(&Path) -> String) -> Setup {
        let home = tempfile::tempdir().expect("tempdir");
        let db = db(home.path());
        let upstream = StandInUpstream::start().expect("stand-in starts");
        let ascribe = Ascribe {
            home: home.path(),
            db: db.clone(),
        };
        let token =
            ascribe.init_with_scenarios(&upstream.base_url(), SCENARIOS, PROVIDER_KEY_VARIABLE);
        Setup {
            home,
            db,
            _upstream: upstream,
            token,
        }
    }

    fn ascribe(&self) -> Ascribe<'_> {
        Ascribe {
            home: self.home.path(),
            db: self.db.clone(),
        }
    }

    fn serve(&self) -> Server {
        Server::start(
            &self.ascribe(),
            &[],
            &[(PROVIDER_KEY_VARIABLE, PROVIDER_KEY)],
        )
    }
}

/// A SQLite ledger in the home directory.
fn sqlite_in(home: &Path) -> String {
    format!("sqlite://{}", home.join("ledger.db").display())
}

fn client() -> Client {
    common::load::client(Duration::from_secs(20))
}

/// What a caller got back from one call.
#[derive(Clone, Debug)]
struct Answer {
    alias: &'static str,
    stream: bool,
    status: u16,
    inference_id: Option<String>,
    body: String,
    /// The body was read to its end (for a 200 stream: up to its terminal event).
    whole: bool,
    started: Instant,
    ended: Instant,
}

impl Answer {
    fn anthropic(&self) -> bool {
        anthropic(self.alias)
    }

    /// A whole answer with its inference id: what the brief calls an answer received.
    fn received(&self) -> bool {
        self.status == 200 && self.whole && self.inference_id.is_some()
    }
}

/// One call: Anthropic's Messages API for `claude-*`, else chat completions.
fn infer(
    client: &Client,
    base: &str,
    token: &str,
    alias: &'static str,
    stream: bool,
) -> reqwest::Result<Answer> {
    let started = Instant::now();
    let reply = common::load::infer(client, base, token, alias, stream, "hi", &[])?;
    Ok(Answer {
        alias,
        stream,
        status: reply.status,
        inference_id: reply.header("ascribe-inference-id"),
        body: reply.body,
        whole: reply.whole,
        started,
        ended: Instant::now(),
    })
}

/// What the callers share: where the gateway is now (none while it is down), and what they
/// got back.
struct Load {
    base: RwLock<Option<String>>,
    token: String,
    stop: AtomicBool,
    in_flight: AtomicUsize,
    answers: Mutex<Vec<Answer>>,
    /// Calls that got no HTTP answer at all (the connection was refused or reset).
    failed: AtomicUsize,
}

impl Load {
    fn new(token: &str) -> Arc<Load> {
        Arc::new(Load {
            base: RwLock::new(None),
            token: token.to_owned(),
            stop: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            answers: Mutex::new(Vec::new()),
            failed: AtomicUsize::new(0),
        })
    }

    fn set_base(&self, base: Option<&str>) {
        *self.base.write().expect("base") = base.map(str::to_owned);
    }

    fn answers(&self) -> Vec<Answer> {
        self.answers.lock().expect("answers").clone()
    }

    /// Waits until `enough` says the answers are enough, or panics after `limit`.
    fn wait_for(&self, limit: Duration, what: &str, enough: impl Fn(&[Answer]) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if enough(&self.answers.lock().expect("answers")) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `n` caller threads, each cycling through [`MIX`] from a different place.
    fn start_callers(self: &Arc<Load>, n: usize) -> Callers {
        let handles = (0..n)
            .map(|first| {
                let load = Arc::clone(self);
                std::thread::spawn(move || load.caller(first))
            })
            .collect();
        Callers {
            load: Arc::clone(self),
            handles,
        }
    }

    fn caller(&self, first: usize) {
        let client = client();
        for n in first.. {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let base = self.base.read().expect("base").clone();
            let Some(base) = base else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let (alias, stream) = MIX[n % MIX.len()];
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let answer = infer(&client, &base, &self.token, alias, stream);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match answer {
                Ok(answer) => {
                    // A refused caller backs off a little, as clients do.
                    let refused = answer.status != 200;
                    self.answers.lock().expect("answers").push(answer);
                    if refused {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Err(_) => {
                    self.failed.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

/// The caller threads; dropping them (at the end, or when a test fails) stops them.
struct Callers {
    load: Arc<Load>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Callers {
    /// Stops the callers and waits for them.
    fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.load.stop.store(true, Ordering::SeqCst);
        for handle in self.handles.drain(..) {
            if handle.join().is_err() && !std::thread::panicking() {
                panic!("a caller thread panicked");
            }
        }
    }
}

impl Drop for Callers {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Reading the ledger back
// ---------------------------------------------------------------------------------------

/// What the ledger holds, read straight from the database.
struct Stored {
    entries: u64,
    /// `inference.recorded` bodies by inference id.
    recorded: BTreeMap<String, Value>,
    /// `inference.completed` bodies by inference id.
    completed: BTreeMap<String, Value>,
}

/// Reads every entry and checks that none is torn: each parses as JSON, carries its row's
/// `seq` and `kind`, and its stored leaf hash is `SHA-256(0x00 || entry)`; seqs run 0..n
/// without gap or repeat, and no inference has two inference or completion entries.
fn read_ledger(db: &str) -> Stored {
    let location = DatabaseLocation::from_str(db).expect("a database URL");
    let mut backend = open_backend(&location, false).expect("the ledger opens");
    let (mut recorded, mut completed) = (BTreeMap::new(), BTreeMap::new());
    let mut next = 0u64;
    loop {
        let page = query::entries(backend.as_mut(), next, 1000).expect("entries read");
        if page.is_empty() {
            break;
        }
        for row in page {
            assert_eq!(row.seq, next, "seqs are contiguous");
            let (entry, _) = untorn(&row);
            let into = match row.kind.as_str() {
                "inference.recorded" => &mut recorded,
                "inference.completed" => &mut completed,
                _ => {
                    next += 1;
                    continue;
                }
            };
            let body = entry["body"].clone();
            let id = body["inference_id"].as_str().expect("an id").to_owned();
            assert!(
                into.insert(id.clone(), body).is_none(),
                "two {} entries for {id}",
                row.kind
            );
            next += 1;
        }
    }
    Stored {
        entries: next,
        recorded,
        completed,
    }
}

/// Runs `ascribe verify --json`; it must exit 0 and report every entry valid.
fn verify(ascribe: &Ascribe<'_>, entries: u64) -> Value {
    let output = ascribe
        .command(&["verify", "--json"])
        .output()
        .expect("ascribe verify runs");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    assert_eq!(
        output.status.code(),
        Some(0),
        "verify failed: {report} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries"], entries, "{report}");
    assert_eq!(report["tree_size"], entries, "{report}");
    report
}

/// The released answers (any answer that carried an inference id, cut or not) whose
/// inference entry is missing.
fn lost<'a>(answers: &'a [Answer], stored: &Stored) -> Vec<&'a str> {
    answers
        .iter()
        .filter_map(|answer| answer.inference_id.as_deref())
        .filter(|id| !stored.recorded.contains_key(*id))
        .collect()
}

/// Checks that each answer received is recorded as what it was: status, stream, alias.
fn assert_recorded_as_answered(answers: &[Answer], stored: &Stored) {
    for answer in answers.iter().filter(|answer| answer.received()) {
        let id = answer.inference_id.as_deref().expect("an id");
        let body = &stored.recorded[id];
        assert_eq!(body["status"], 200, "{body}");
        assert_eq!(body["stream"], answer.stream, "{body}");
        assert_eq!(body["alias"], answer.alias, "{body}");
    }
}

// ---------------------------------------------------------------------------------------
// SIGKILL of the gateway
// ---------------------------------------------------------------------------------------

/// A stream read to its end more than this long before a kill must have its completion.
const COMPLETION_GRACE: Duration = Duration::from_secs(2);

/// Answers to wait for after each start before the kill may come.
const WARM_UP: usize = 8;

/// The kill comes this many milliseconds at most after the warm-up.
const MAX_KILL_DELAY_MS: u64 = 1500;

fn gateway_sigkill(store: &str, db: impl FnOnce(&Path) -> String) {
    let rounds = if long() { 20 } else { 3 };
    let (mut rng, seed) = Rng::from_env(&format!("gateway_sigkill store={store}"));
    let setup = Setup::new(db);
    let load = Load::new(&setup.token);
    let callers = load.start_callers(CALLERS);
    let mut kills = Vec::new();
    let mut in_flight_at_kill = 0;
    let started = Instant::now();
    for round in 0..rounds {
        let server = setup.serve();
        let before = load.answers().len();
        load.set_base(Some(&server.base));
        load.wait_for(
            Duration::from_secs(30),
            "answers after a restart",
            |answers| {
                answers[before..]
                    .iter()
                    .filter(|answer| answer.received())
                    .count()
                    >= WARM_UP
            },
        );
        let delay = rng.below(MAX_KILL_DELAY_MS);
        std::thread::sleep(Duration::from_millis(delay));
        let in_flight = load.in_flight.load(Ordering::SeqCst);
        let log = server.log();
        drop(server); // `Server`'s drop kills the process (SIGKILL) and reaps it.
        kills.push(Instant::now());
        load.set_base(None);
        in_flight_at_kill += in_flight;
        eprintln!("round {round}: killed {delay} ms after warm-up, {in_flight} calls in flight");
        assert!(
            !log.contains("panicked"),
            "the gateway panicked before the kill: {log}"
        );
    }
    callers.finish();
    let elapsed = started.elapsed();

    let answers = load.answers();
    let stored = read_ledger(&setup.db);
    let lost = lost(&answers, &stored);
    let received: Vec<&Answer> = answers.iter().filter(|answer| answer.received()).collect();
    let released = answers
        .iter()
        .filter(|answer| answer.inference_id.is_some())
        .count();
    let cut = answers
        .iter()
        .filter(|answer| answer.inference_id.is_some() && !answer.whole)
        .count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    let streams_ended: Vec<&&Answer> = received.iter().filter(|a| a.stream).collect();
    let completed = |answer: &Answer| {
        let id = answer.inference_id.as_deref().expect("an id");
        stored
            .completed
            .get(id)
            .is_some_and(|body| body["completed"] == true)
    };
    let completions_seen = streams_ended.iter().filter(|a| completed(a)).count();
    let completions_missing = streams_ended.len() - completions_seen;
    // A stream's completion is written after its last byte went out, so a kill right after
    // may take it; one that ended long before the next kill must have it.
    let before_kill = |answer: &Answer| {
        let next_kill = kills.iter().find(|kill| **kill >= answer.ended);
        next_kill.map_or(Duration::MAX, |kill| *kill - answer.ended)
    };
    let completions_lost: Vec<&str> = streams_ended
        .iter()
        .filter(|answer| !completed(answer) && before_kill(answer) > COMPLETION_GRACE)
        .map(|answer| answer.inference_id.as_deref().expect("an id"))
        .collect();
    // How long before its kill the earliest stream without completion ended.
    let missing_ended_before_kill_ms = streams_ended
        .iter()
        .filter(|answer| !completed(answer))
        .map(|answer| before_kill(answer).as_millis())
        .max()
        .unwrap_or(0);
    let dialects: BTreeSet<bool> = received.iter().map(|a| a.anthropic()).collect();
    let report = verify(&setup.ascribe(), stored.entries);
    eprintln!(
        "reliability: test=gateway_sigkill store={store} rounds={rounds} answers={} \
         released={released} cut_by_kill={cut} records_lost={} in_flight_at_kill={} \
         streams_ended={} completions_seen={completions_seen} \
         completions_missing={completions_missing} \
         missing_ended_before_kill_ms_max={missing_ended_before_kill_ms} completions_lost={} \
         refused={} connection_failures={} entries={} heads_checked={} seed={seed} \
         wall_s={:.1}",
        received.len(),
        lost.len(),
        in_flight_at_kill,
        streams_ended.len(),
        completions_lost.len(),
        refused.len(),
        load.failed.load(Ordering::SeqCst),
        stored.entries,
        report["heads_checked"],
        elapsed.as_secs_f64(),
    );
    assert!(
        lost.is_empty(),
        "answers released without a record: {lost:?}"
    );
    assert!(
        completions_lost.is_empty(),
        "streams ended long before a kill without completion: {completions_lost:?}"
    );
    assert!(
        refused.is_empty(),
        "a healthy ledger refused calls: {:?}",
        refused.first()
    );
    assert_eq!(dialects.len(), 2, "answers in both dialects");
    assert!(in_flight_at_kill > 0, "no kill came with calls in flight");
    assert!(received.len() >= rounds * WARM_UP);
    assert_recorded_as_answered(&answers, &stored);
}

#[test]
fn gateway_sigkill_under_load_loses_no_record_on_sqlite() {
    gateway_sigkill("sqlite", sqlite_in);
}

#[test]
fn gateway_sigkill_under_load_loses_no_record_on_postgres() {
    let schema = Schema::new();
    gateway_sigkill("postgres", |_| schema.url.clone());
}

// ---------------------------------------------------------------------------------------
// PostgreSQL restarted under load
// ---------------------------------------------------------------------------------------

/// A PostgreSQL cluster of the test's own, in a temporary directory, on a free port; stopped
/// and removed when dropped, even when the test fails.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Runs `initdb` and starts the server.
    fn start() -> PrivatePostgres {
        let bindir = server_bindir();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = PrivatePostgres { dir, bindir, port };
        std::fs::create_dir(cluster.socket_dir()).expect("socket directory");
        // initdb and postgres refuse to run as root: the directories go to `postgres`.
        if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .expect("chown runs");
            assert!(chown.success(), "chown postgres {:?}", cluster.dir.path());
        }
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("a path"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_server();
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of the server's binaries as `postgres` (when we are root) and checks it
    /// succeeded.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program, args).output().expect("runs");
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let binary = self.bindir.join(program);
        let mut command = match is_root() {
            true => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(binary);
                command
            }
            false => Command::new(binary),
        };
        command.args(args).current_dir(self.dir.path());
        command
    }

    /// Starts the server and waits until it accepts connections.
    fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=40 \
             -c shared_buffers=16MB",
            self.port,
            self.socket_dir().display()
        );
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                data.to_str().expect("a path"),
                "-l",
                log.to_str().expect("a path"),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
            ],
        );
    }

    /// Stops the server at once, as a crash would: no checkpoint, crash recovery at the next
    /// start.
    fn stop_immediately(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                data.to_str().expect("a path"),
                "-m",
                "immediate",
                "-w",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command(
                "pg_ctl",
                &[
                    "stop",
                    "-D",
                    data.to_str().unwrap_or(""),
                    "-m",
                    "immediate",
                    "-w",
                ],
            )
            .output();
    }
}

/// Where PostgreSQL's server binaries are: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout).
fn server_bindir() -> PathBuf {
    let configured = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let debian = || {
        let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
        versions
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let version: u32 = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .max()
            .map(|(_, bin)| bin)
    };
    let bindir = configured
        .filter(|bin| bin.join("initdb").exists())
        .or_else(debian)
        .expect("PostgreSQL's server binaries (initdb, pg_ctl, postgres) are needed");
    assert!(bindir.join("initdb").exists(), "no initdb in {bindir:?}");
    bindir
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// Checks a refusal is a 503 in the caller's dialect, without an inference id.
fn assert_refused_in_dialect(answer: &Answer) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.inference_id, None, "{answer:?}");
    let body: Value = serde_json::from_str(&answer.body).expect("a JSON error body");
    if answer.anthropic() {
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], "api_error", "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    } else {
        assert_eq!(body["error"]["type"], "server_error", "{body}");
        assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
}

/// Answers received in full that started after `since`.
fn received_since(answers: &[Answer], since: Instant) -> usize {
    answers
        .iter()
        .filter(|answer| answer.started >= since && answer.received())
        .count()
}

/// How long the server stays down at least.
const DOWN_AT_LEAST: Duration = Duration::from_millis(500);

#[test]
fn postgres_restart_under_load_refuses_then_recovers() {
    let restarts = if long() { 10 } else { 2 };
    let cluster = PrivatePostgres::start();
    let setup = Setup::new(|_| cluster.url());
    let load = Load::new(&setup.token);
    let mut server = setup.serve();
    load.set_base(Some(&server.base));
    let callers = load.start_callers(4);
    let started = Instant::now();
    // Calls wholly inside a time the server was down: (after stop returned, before start).
    let mut down_windows = Vec::new();
    let mut up_since = Instant::now();
    let mut up_windows = Vec::new();
    let mut stopping = Vec::new();
    for restart in 0..restarts {
        load.wait_for(
            Duration::from_secs(30),
            "answers with the server up",
            |answers| received_since(answers, up_since) >= 20,
        );
        stopping.push(Instant::now());
        cluster.stop_immediately();
        let down = Instant::now();
        // Stay down for a while, and until callers of both dialects were refused.
        std::thread::sleep(DOWN_AT_LEAST);
        load.wait_for(
            Duration::from_secs(30),
            "refusals in both dialects",
            |answers| {
                let refused_in = |anthropic: bool| {
                    answers
                        .iter()
                        .filter(|a| {
                            a.started >= down && a.status == 503 && a.anthropic() == anthropic
                        })
                        .count()
                };
                refused_in(true) >= 3 && refused_in(false) >= 3
            },
        );
        let restarting = Instant::now();
        down_windows.push((down, restarting));
        cluster.start_server();
        up_since = Instant::now();
        up_windows.push(up_since);
        // The same gateway process recovers by itself: answers flow again and the last
        // calls all succeed.
        load.wait_for(Duration::from_secs(30), "recovery", |answers| {
            let after: Vec<&Answer> = answers.iter().filter(|a| a.started >= up_since).collect();
            after.len() >= 20 && after[after.len() - 12..].iter().all(|a| a.received())
        });
        eprintln!(
            "restart {restart}: down for {:?}, recovered in {:?}",
            restarting - down,
            up_since.elapsed()
        );
    }
    load.wait_for(
        Duration::from_secs(30),
        "answers after the last restart",
        |answers| received_since(answers, up_since) >= 20,
    );
    callers.finish();

    // A restart while no call comes: every connection the gateway keeps is stale when the
    // next calls arrive, and those calls must be answered all the same.
    cluster.stop_immediately();
    cluster.start_server();
    let client = client();
    let quiet: Vec<Answer> = MIX
        .iter()
        .cycle()
        .take(2 * MIX.len())
        .map(|&(alias, stream)| {
            infer(&client, &server.base, &setup.token, alias, stream).expect("an answer")
        })
        .collect();
    let quiet_refused = quiet.iter().filter(|answer| !answer.received()).count();

    let status = server.terminate();
    assert!(status.success(), "exit {status}: {}", server.log());
    let elapsed = started.elapsed();

    let answers = load.answers();
    let in_down = |answer: &Answer| {
        down_windows
            .iter()
            .any(|(down, up)| answer.started >= *down && answer.ended <= *up)
    };
    let during_down: Vec<&Answer> = answers.iter().filter(|a| in_down(a)).collect();
    for answer in &during_down {
        assert_refused_in_dialect(answer);
    }
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    for answer in &refused {
        assert_refused_in_dialect(answer);
    }
    let other_errors: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status != 200 && a.status != 503)
        .collect();
    // Refusals after the gateway had answered again following a restart.
    let refused_after_recovery = up_windows
        .iter()
        .enumerate()
        .map(|(n, up)| {
            let until = stopping.get(n + 1).copied();
            let phase: Vec<&Answer> = answers
                .iter()
                .filter(|a| a.started >= *up && until.is_none_or(|until| a.ended <= until))
                .collect();
            let first_ok = phase
                .iter()
                .position(|a| a.received())
                .unwrap_or(phase.len());
            phase[first_ok..].iter().filter(|a| a.status == 503).count()
        })
        .sum::<usize>();
    let answers: Vec<Answer> = answers.iter().chain(&quiet).cloned().collect();
    let stored = read_ledger(&setup.db);
    let lost = lost(&answers, &stored);
    let received = answers.iter().filter(|answer| answer.received()).count();
    let report = verify(&setup.ascribe(), stored.entries);
    eprintln!(
        "reliability: test=postgres_restart store=postgres restarts={} \
         answers={received} refused_503={} refused_while_down={} \
         refused_after_recovery={refused_after_recovery} \
         refused_after_quiet_restart={quiet_refused} other_errors={} \
         records_lost={} entries={} heads_checked={} wall_s={:.1}",
        restarts + 1,
        refused.len(),
        during_down.len(),
        other_errors.len(),
        lost.len(),
        stored.entries,
        report["heads_checked"],
        elapsed.as_secs_f64()
    );
    assert!(
        lost.is_empty(),
        "answers released without a record: {lost:?}"
    );
    assert!(other_errors.is_empty(), "{:?}", other_errors.first());
    assert_eq!(
        refused_after_recovery, 0,
        "refusals after the gateway recovered"
    );
    assert_eq!(
        quiet_refused,
        0,
        "calls after a quiet restart not answered: {:?}",
        quiet.iter().find(|answer| !answer.received())
    );
    assert!(
        !during_down.is_empty(),
        "no call was made while the server was down"
    );
    assert_recorded_as_answered(&answers, &stored);
    drop(setup);
    drop(cluster);
}
