//! `ascribe serve` when its ledger cannot be written, on SQLite and on PostgreSQL: a real
//! process, real HTTP, a stand-in upstream. For each fault the test proves that
//!
//! - every inference call (OpenAI chat completions and Anthropic messages, whole and
//!   streamed) is refused with a 503 in its own dialect's error shape and no
//!   `Ascribe-Inference-Id`, and nothing of the upstream's answer; calls in flight from two
//!   concurrent callers as the fault begins and as it ends get either such a 503 or a 200
//!   that was recorded;
//! - the log names the reason next to each call not recorded, and `GET /readyz` answers 503
//!   with the reason;
//! - once the fault is undone the same process answers again and `/readyz` is 200: no
//!   restart;
//! - every 200 released during the whole run carries an inference id that is in the ledger
//!   (every stream with its completion), no refused call left a record, and `ascribe verify`
//!   passes at the end.
//!
//! The faults:
//!
//! - SQLite, disk full: the database lives on a small tmpfs mounted for the test; a filler
//!   file takes the remaining space (after a `wal_checkpoint(TRUNCATE)`, so the next commit
//!   must grow the WAL) and writes fail with "database or disk is full"; deleting the filler
//!   undoes it. Mounting needs root (CAP_SYS_ADMIN); without it the test fails and says so.
//! - SQLite, ledger locked: another connection holds the write lock (`BEGIN IMMEDIATE`).
//!   With `ledger.lock_timeout` at 1 s the refusal arrives within a few seconds, not after
//!   the 30 s SQLite connections wait by default.
//! - SQLite, read-only file system: `mount -o remount,ro` is refused by the kernel ("mount
//!   point is busy") while any process holds a file of it open for writing, which the
//!   gateway always does with its ledger; the test asserts that refusal and that the gateway
//!   keeps answering.
//!   LIMITATION: so a read-only SQLite ledger under a running gateway is not exercised here;
//!   the kernel offers no way to make an open, writable file read-only and back again.
//! - PostgreSQL, read-only database: `ALTER DATABASE ... SET default_transaction_read_only
//!   = on` on a database of the test's own, and `pg_terminate_backend` of the gateway's
//!   sessions; the gateway reconnects into read-only sessions. Undone by `RESET` and one
//!   more termination. A pooled connection the server ended may cost one call a 503 (for
//!   want of a read, counted as `refused_503_unreadable`, or a write that met the closed
//!   connection, logged as such); those are allowed, as many as there are connections.
//! - PostgreSQL, ledger locked: another session holds `LOCK TABLE ledger_entries`; the
//!   gateway's `lock_timeout` (1 s) turns the wait into a prompt 503.
//!
//! Fast version: one round of each fault, about 20 s (the two tests run in parallel, each
//! making some 400 to 900 calls, most of them from the concurrent callers).
//! `ASCRIBE_LONG_TESTS=1`: five rounds, about 80 s.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher as _;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ascribe_store::{open_backend, DatabaseLocation, PostgresBackend, SqlValue};
use reqwest::blocking::Client;
use serde_json::Value;

mod common;

use common::load::{anthropic, client, header, request, stream_ended};
use common::{Ascribe, Scenario, Server, CHAT, CLAUDE};

/// The variable the Anthropic deployment reads its provider key from.
const PROVIDER_KEY_VARIABLE: &str = "STORAGE_FAULTS_TEST_ANTHROPIC_API_KEY";

const SCENARIOS: &[Scenario] = &[CHAT, CLAUDE];

/// `ledger.lock_timeout` for the gateway under test, as set and as a duration.
const LOCK_TIMEOUT_SETTING: &str = "1s";
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a call may take to be refused while the ledger is locked: its own wait for the
/// lock, plus one more for a write the writer may be waiting on when the call arrives (a
/// tree head it tries to sign while idle), plus slack for a busy machine. Far below the
/// 30 s SQLite waits by default.
const LOCKED_REFUSAL_WITHIN: Duration = Duration::from_secs(4);

/// Callers kept calling while a fault begins and while it is undone, so that it meets calls
/// in flight; and how long they go on before, and after, the change.
const LOAD_CALLERS: usize = 2;
const LOAD_BEFORE: Duration = Duration::from_millis(200);
const LOAD_AFTER: Duration = Duration::from_millis(1500);

/// Read connections the gateway pools (`limits.max_concurrent_reads`, left at its default).
const POOLED_READERS: usize = 8;

/// How long the gateway may take to answer again once a fault is undone.
const RECOVERY_WITHIN: Duration = Duration::from_secs(20);

/// The size of the tmpfs the SQLite ledger lives on.
const TMPFS_SIZE: &str = "16m";

/// The entries table, which every write transaction reads first (see ascribe-store's
/// `sql.rs`).
const ENTRIES_TABLE: &str = "ledger_entries";

/// Rounds of faults: one, or five with `ASCRIBE_LONG_TESTS=1`.
fn rounds() -> usize {
    if common::long() {
        5
    } else {
        1
    }
}

// ---------------------------------------------------------------------------------------
// Calls and what they got
// ---------------------------------------------------------------------------------------

/// One kind of call: which alias (and so which dialect), whole or streamed.
#[derive(Clone, Copy, Debug)]
struct Call {
    alias: &'static str,
    stream: bool,
}

impl Call {
    fn anthropic(self) -> bool {
        anthropic(self.alias)
    }
}

/// Every kind of call, made in each phase.
const CALLS: [Call; 4] = [
    Call {
        alias: "chat-v1",
        stream: false,
    },
    Call {
        alias: "claude-v1",
        stream: false,
    },
    Call {
        alias: "chat-v1",
        stream: true,
    },
    Call {
        alias: "claude-v1",
        stream: true,
    },
];

/// What a caller got back.
#[derive(Debug)]
struct Reply {
    call: Call,
    status: u16,
    inference_id: Option<String>,
    content_type: Option<String>,
    body: String,
    took: Duration,
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// The ledger could not record it.
    Unrecorded,
    /// The ledger could not be read to authenticate or route it.
    Unreadable,
}

/// What a change of the ledger's storage leads to.
#[derive(Clone, Copy)]
enum Leads {
    /// A fault began: calls are refused.
    Refusals,
    /// The fault was undone: calls are answered.
    Answers,
}

/// Callers running while a fault begins or ends.
struct Load {
    stop: Arc<AtomicBool>,
    callers: Vec<std::thread::JoinHandle<Vec<Reply>>>,
}

/// What the run did and saw, for the final checks and the figures.
#[derive(Default)]
struct Tally {
    faults: u64,
    calls: u64,
    /// Calls answered 200, by inference id: whether each was a stream.
    answered: BTreeMap<String, bool>,
    refused: u64,
    /// Of the refused calls, those refused because a read failed.
    refused_unreadable: u64,
}

/// The gateway under test, its caller key and what it answered.
struct Run<'a> {
    ascribe: Ascribe<'a>,
    location: DatabaseLocation,
    server: Server,
    client: Client,
    token: String,
    tally: Tally,
}

impl Run<'_> {
    /// Sends one call and reads its whole answer.
    fn send(&mut self, call: Call) -> Reply {
        self.tally.calls += 1;
        send(&self.client, &self.server.base, &self.token, call)
    }

    /// Starts [`LOAD_CALLERS`] callers, each calling whole answers of both dialects in a
    /// loop until [`Run::finish_load`].
    fn start_load(&self) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let callers = (0..LOAD_CALLERS)
            .map(|first| {
                let (stop, client) = (Arc::clone(&stop), self.client.clone());
                let (base, token) = (self.server.base.clone(), self.token.clone());
                std::thread::spawn(move || {
                    let mut replies = Vec::new();
                    for n in first.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        replies.push(send(&client, &base, &token, CALLS[n % 2]));
                    }
                    replies
                })
            })
            .collect();
        Load { stop, callers }
    }

    /// Stops the callers and counts what they got: each call answered 200 (recorded
    /// before the fault took hold, or after it was undone) or refused with a 503 (for want
    /// of a read only when `stale_readers`). Returns how many of each.
    fn finish_load(&mut self, load: Load, stale_readers: bool) -> (usize, usize) {
        load.stop.store(true, Ordering::SeqCst);
        let (mut answered, mut refused) = (0, 0);
        for caller in load.callers {
            let replies = caller.join().expect("a load caller panicked");
            for reply in replies {
                self.tally.calls += 1;
                if reply.status == 200 {
                    self.count_answer(&reply);
                    answered += 1;
                } else {
                    let why = self.count_refusal(&reply);
                    assert!(
                        why == Refused::Unrecorded || stale_readers,
                        "refused for want of a read: {reply:?}"
                    );
                    refused += 1;
                }
            }
        }
        (answered, refused)
    }

    /// Counts a 200: it must carry an inference id seen for no other call, and a whole
    /// answer (a stream up to its dialect's last event).
    fn count_answer(&mut self, reply: &Reply) {
        assert_eq!(reply.status, 200, "{reply:?}");
        let id = reply
            .inference_id
            .clone()
            .unwrap_or_else(|| panic!("a 200 without Ascribe-Inference-Id: {reply:?}"));
        let ended = match reply.call.stream {
            false => serde_json::from_str::<Value>(&reply.body).is_ok(),
            true => stream_ended(reply.call.anthropic(), &reply.body),
        };
        assert!(ended, "answer not whole: {reply:?}");
        let fresh = self.tally.answered.insert(id, reply.call.stream).is_none();
        assert!(fresh, "an inference id handed out twice: {reply:?}");
    }

    /// Counts a refusal: a 503 in the call's dialect, with no inference id and nothing of
    /// the upstream's answer. Returns why: the ledger could not record the call, or (a
    /// pooled read connection the server had closed) could not be read to route it.
    fn count_refusal(&mut self, reply: &Reply) -> Refused {
        assert_eq!(reply.status, 503, "{reply:?}");
        assert_eq!(
            reply.inference_id, None,
            "a refusal names no inference: {reply:?}"
        );
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/json"),
            "{reply:?}"
        );
        let body: Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|error| panic!("refusal body is not JSON ({error}): {reply:?}"));
        let message = match reply.call.anthropic() {
            true => {
                assert_eq!(body["type"], "error", "Anthropic's shape: {body}");
                assert_eq!(body["error"]["type"], "api_error", "{body}");
                assert_eq!(
                    body.as_object().map(|object| object.len()),
                    Some(2),
                    "{body}"
                );
                &body["error"]["message"]
            }
            false => {
                let error = &body["error"];
                assert_eq!(error["type"], "server_error", "OpenAI's shape: {body}");
                assert_eq!(error["code"], "service_unavailable", "{body}");
                assert!(error["param"].is_null(), "{body}");
                assert_eq!(
                    body.as_object().map(|object| object.len()),
                    Some(1),
                    "{body}"
                );
                &error["message"]
            }
        };
        // Nothing of the upstream's answer: neither its text nor the model it served.
        for upstream_text in ["gpt-4o", "claude-sonnet", "choices", "content_block"] {
            assert!(!reply.body.contains(upstream_text), "{reply:?}");
        }
        self.tally.refused += 1;
        let message = message.as_str().unwrap_or_default();
        if message.contains("cannot record this call") {
            Refused::Unrecorded
        } else if message.contains("cannot read its ledger") {
            self.tally.refused_unreadable += 1;
            Refused::Unreadable
        } else {
            panic!("a 503 for another reason: {body}");
        }
    }

    /// Every kind of call, each answered 200; then waits until each stream answered has its
    /// completion entry, so that no completion is still being written when a fault begins.
    fn healthy_round(&mut self) {
        for call in CALLS {
            let reply = self.send(call);
            self.count_answer(&reply);
        }
        self.settle();
    }

    /// Calls of every kind until [`CALLS`]`.len()` were refused because the ledger could not
    /// record them; every call meanwhile must be refused. `stale_readers` allows refusals
    /// for want of a read, as many as there are pooled read connections, which the server
    /// ended. With `within`, each refusal to record arrives within that long, after waiting
    /// out the lock timeout.
    fn refused_round(&mut self, within: Option<Duration>, stale_readers: bool) {
        let (mut unrecorded, mut unreadable) = (0, 0);
        for call in CALLS.iter().cycle() {
            if unrecorded == CALLS.len() {
                break;
            }
            let reply = self.send(*call);
            match self.count_refusal(&reply) {
                Refused::Unrecorded => unrecorded += 1,
                Refused::Unreadable => {
                    unreadable += 1;
                    assert!(
                        stale_readers && unreadable <= POOLED_READERS,
                        "refused for want of a read: {reply:?}"
                    );
                    continue;
                }
            }
            if let Some(bound) = within {
                assert!(
                    reply.took <= bound,
                    "refused after {:?}, more than {bound:?}",
                    reply.took
                );
                assert!(
                    reply.took >= LOCK_TIMEOUT.mul_f64(0.8),
                    "refused after {:?}, before the lock timeout passed: not for the lock?",
                    reply.took
                );
            }
        }
    }

    /// Runs `change` (a fault begins or ends) while [`LOAD_CALLERS`] callers are calling:
    /// they call for [`LOAD_BEFORE`] before it and [`LOAD_AFTER`] after it, and at least one
    /// of their calls must get what the change `leads_to`. Returns what `change` returned.
    fn under_load<R>(
        &mut self,
        leads_to: Leads,
        stale_readers: bool,
        change: impl FnOnce() -> R,
    ) -> R {
        let load = self.start_load();
        std::thread::sleep(LOAD_BEFORE);
        let changed = change();
        std::thread::sleep(LOAD_AFTER);
        let (answered, refused) = self.finish_load(load, stale_readers);
        match leads_to {
            Leads::Refusals => assert!(refused > 0, "no call refused once the fault began"),
            Leads::Answers => assert!(answered > 0, "no call answered once the fault ended"),
        }
        changed
    }

    /// Calls until one is answered (refusals meanwhile are counted), then a healthy round
    /// and a ready `/readyz`: the same process recovered.
    fn recover(&mut self, fault: &str) {
        let deadline = Instant::now() + RECOVERY_WITHIN;
        loop {
            let reply = self.send(CALLS[0]);
            if reply.status == 200 {
                self.count_answer(&reply);
                break;
            }
            self.count_refusal(&reply);
            assert!(
                Instant::now() < deadline,
                "no answer {RECOVERY_WITHIN:?} after {fault} was undone: {}",
                self.server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.healthy_round();
        let deadline = Instant::now() + RECOVERY_WITHIN;
        loop {
            let (status, readiness) = self.readyz();
            if status == 200 {
                assert_eq!(readiness["ready"], true, "{readiness}");
                assert_eq!(readiness["checks"]["ledger"]["ok"], true, "{readiness}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not ready again after {fault}: {readiness}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn readyz(&self) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/readyz", self.server.base))
            .send()
            .expect("/readyz answers");
        let status = response.status().as_u16();
        (status, response.json().expect("/readyz JSON"))
    }

    /// `/readyz` answers 503, the ledger not ok, with a reason holding one of `reasons`.
    fn assert_unready(&self, reasons: &[&str]) {
        let (status, readiness) = self.readyz();
        assert_eq!(status, 503, "{readiness}");
        assert_eq!(readiness["ready"], false, "{readiness}");
        let ledger = &readiness["checks"]["ledger"];
        assert_eq!(ledger["ok"], false, "{readiness}");
        let reason = ledger["reason"].as_str().unwrap_or_default();
        assert!(
            reasons.iter().any(|wanted| reason.contains(wanted)),
            "/readyz reason `{reason}` names none of {reasons:?}"
        );
    }

    /// How many log lines say an inference was not recorded.
    fn unrecorded_lines(&self) -> usize {
        self.server
            .log()
            .lines()
            .filter(|line| line.contains("inference not recorded"))
            .count()
    }

    /// Asserts that each call not recorded after the first `before` has a log line naming
    /// why: `reason`, or one of `also` (a connection the server ended, met once by the
    /// writer); `reason` at least once.
    fn assert_logged(&self, before: usize, reason: &str, also: &[&str]) {
        let log = self.server.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("inference not recorded"))
            .skip(before)
            .collect();
        assert!(
            lines.len() >= CALLS.len(),
            "{} calls not recorded but {} log lines say so: {log}",
            CALLS.len(),
            lines.len()
        );
        for line in &lines {
            let named = std::iter::once(&reason)
                .chain(also)
                .any(|why| line.contains(why));
            assert!(
                named,
                "`{line}` names neither `{reason}` nor any of {also:?}"
            );
        }
        assert!(
            lines.iter().any(|line| line.contains(reason)),
            "no log line names `{reason}`: {log}"
        );
    }

    /// Waits until every stream answered has its completion entry.
    fn settle(&self) {
        let streams: BTreeSet<&String> = self
            .tally
            .answered
            .iter()
            .filter(|(_, stream)| **stream)
            .map(|(id, _)| id)
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let completed = ledger_inferences(&self.location).completed;
            if streams.iter().all(|id| completed.contains(*id)) {
                return;
            }
            assert!(Instant::now() < deadline, "stream completions not recorded");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the gateway, then checks the ledger against every answer and verifies it;
    /// prints the figures.
    fn finish(mut self, store: &str, extra: &str) {
        let status = self.server.terminate();
        assert!(status.success(), "exit {status}: {}", self.server.log());
        let ledger = ledger_inferences(&self.location);
        let lost: Vec<&String> = self
            .tally
            .answered
            .keys()
            .filter(|id| !ledger.recorded.contains(*id))
            .collect();
        let unfinished: Vec<&String> = self
            .tally
            .answered
            .iter()
            .filter(|(id, stream)| **stream && !ledger.completed.contains(*id))
            .map(|(id, _)| id)
            .collect();
        let report = self.ascribe.ok(&["verify", "--json"]);
        eprintln!(
            "reliability: test=storage_faults store={store} rounds={} faults={} calls={} \
             refused_503={} refused_503_unreadable={} answered={} records_lost={} \
             streams_without_completion={} records_of_refused_calls={}{extra}",
            rounds(),
            self.tally.faults,
            self.tally.calls,
            self.tally.refused,
            self.tally.refused_unreadable,
            self.tally.answered.len(),
            lost.len(),
            unfinished.len(),
            ledger
                .recorded
                .len()
                .saturating_sub(self.tally.answered.len()),
        );
        assert!(lost.is_empty(), "answered without a record: {lost:?}");
        assert!(
            unfinished.is_empty(),
            "streams without completion: {unfinished:?}"
        );
        assert_eq!(
            ledger.recorded.len(),
            self.tally.answered.len(),
            "one inference record per answer, none for a refused call"
        );
        assert_eq!(
            self.tally.calls,
            self.tally.refused + self.tally.answered.len() as u64
        );
        assert!(self.tally.faults > 0 && self.tally.refused >= self.tally.faults);
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["tree_size"], report["entries"], "{report}");
    }
}

/// Sends one call to the gateway at `base` and reads its whole answer.
fn send(client: &Client, base: &str, token: &str, call: Call) -> Reply {
    let request = request(client, base, token, call.alias, call.stream, "hi");
    let started = Instant::now();
    let response = request
        .send()
        .unwrap_or_else(|error| panic!("{call:?} got no answer: {error}"));
    let inference_id = header(&response, "ascribe-inference-id");
    let content_type = header(&response, "content-type");
    let status = response.status().as_u16();
    let body = response
        .text()
        .unwrap_or_else(|error| panic!("{call:?}: body cut: {error}"));
    Reply {
        call,
        status,
        inference_id,
        content_type,
        body,
        took: started.elapsed(),
    }
}

/// A ledger in `home` on `db`, with a caller key and the [`SCENARIOS`], served by
/// `ascribe serve` with `ledger.lock_timeout` at [`LOCK_TIMEOUT_SETTING`].
fn start<'a>(home: &'a Path, db: String, upstream_base: &str) -> Run<'a> {
    let location: DatabaseLocation = db.parse().expect("a database location");
    let ascribe = Ascribe { home, db };
    let token = ascribe.init_with_scenarios(upstream_base, SCENARIOS, PROVIDER_KEY_VARIABLE);
    let env = [
        (PROVIDER_KEY_VARIABLE, "sk-ant-standin"),
        ("ASCRIBE_LEDGER_LOCK_TIMEOUT", LOCK_TIMEOUT_SETTING),
    ];
    let server = Server::start(&ascribe, &[], &env);
    let client = client(Duration::from_secs(60));
    let mut run = Run {
        ascribe,
        location,
        server,
        client,
        token,
        tally: Tally::default(),
    };
    run.healthy_round();
    let (status, readiness) = run.readyz();
    assert_eq!(status, 200, "ready before any fault: {readiness}");
    run
}

/// The ids of the inferences in the ledger, and of those with a completion entry.
struct LedgerInferences {
    recorded: BTreeSet<String>,
    completed: BTreeSet<String>,
}

fn ledger_inferences(location: &DatabaseLocation) -> LedgerInferences {
    let mut backend = open_backend(location, false).expect("the ledger opens");
    let mut rows = Vec::new();
    backend
        .read(&mut |tx| {
            rows = tx.query(
                "SELECT kind, entry FROM ledger_entries \
                 WHERE kind IN ('inference.recorded', 'inference.completed') ORDER BY seq",
                &[],
            )?;
            Ok(())
        })
        .expect("the ledger reads");
    let mut ledger = LedgerInferences {
        recorded: BTreeSet::new(),
        completed: BTreeSet::new(),
    };
    for row in rows {
        let (SqlValue::Text(kind), SqlValue::Text(entry)) = (&row[0], &row[1]) else {
            panic!("unexpected row {row:?}");
        };
        let entry: Value = serde_json::from_str(entry).expect("entry JSON");
        let id = entry["body"]["inference_id"]
            .as_str()
            .expect("an inference id")
            .to_owned();
        let into = match kind.as_str() {
            "inference.recorded" => &mut ledger.recorded,
            _ => &mut ledger.completed,
        };
        assert!(into.insert(id.clone()), "two {kind} entries for {id}");
    }
    ledger
}

// ---------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    directory: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let directory = tempfile::tempdir().expect("tempdir");
        let options = format!("size={size},mode=0700");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(directory.path())
            .output()
            .unwrap_or_else(|error| panic!("`mount` could not be run: {error}"));
        assert!(
            output.status.success(),
            "this test needs root (CAP_SYS_ADMIN) to mount a tmpfs for its ledger; `mount -t \
             tmpfs` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { directory }
    }

    fn path(&self) -> &Path {
        self.directory.path()
    }

    /// `mount -o remount,MODE`: whether it worked, and what `mount` said.
    fn remount(&self, mode: &str) -> (bool, String) {
        let output = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .output()
            .unwrap_or_else(|error| panic!("`mount` could not be run: {error}"));
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), said)
    }

    /// Writes a filler file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = File::create(&path).expect("filler created");
        let block = vec![0x5a_u8; 1 << 20];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(error) if error.kind() == ErrorKind::StorageFull => break,
                Err(error) => panic!("filling the tmpfs: {error}"),
            }
        }
        let probe = OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(&[0]));
        assert!(
            probe.is_err_and(|error| error.kind() == ErrorKind::StorageFull),
            "the tmpfs is full"
        );
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.directory.path();
        let unmounted = Command::new("umount")
            .arg(path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Something still holds it (a test failed with its server running): detach it
            // now, the kernel frees it once the last user is gone.
            let _ = Command::new("umount").arg("-l").arg(path).status();
        }
    }
}

/// Moves every frame of the WAL into the database file and truncates the WAL to nothing, so
/// that the next commit must allocate space for it.
fn truncate_wal(database: &Path) {
    let connection = rusqlite::Connection::open(database).expect("opens");
    connection
        .busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    let (busy, frames): (i64, i64) = connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("checkpoint");
    assert_eq!(
        (busy, frames),
        (0, 0),
        "the WAL was checkpointed and truncated"
    );
}

#[test]
fn sqlite_ledger_full_locked_or_read_only_refuses_then_recovers() {
    let home = tempfile::tempdir().expect("tempdir");
    let tmpfs = Tmpfs::mount(TMPFS_SIZE);
    let database = tmpfs.path().join("ledger.db");
    let upstream = ascribe_gateway::testing::StandInUpstream::start().expect("stand-in");
    let db = format!("sqlite://{}", database.display());
    let mut run = start(home.path(), db, &upstream.base_url());
    let mut remounts_refused = 0;

    for _ in 0..rounds() {
        // Disk full.
        let full = "database or disk is full";
        let logged = run.unrecorded_lines();
        truncate_wal(&database);
        let filler = run.under_load(Leads::Refusals, false, || tmpfs.fill());
        run.tally.faults += 1;
        run.refused_round(None, false);
        run.assert_unready(&[full]);
        run.assert_logged(logged, full, &[]);
        run.under_load(Leads::Answers, false, || {
            std::fs::remove_file(&filler).expect("filler removed");
        });
        run.recover("a full disk");

        // Locked: another connection holds the write lock.
        let locked = "database is locked";
        let logged = run.unrecorded_lines();
        let holder = run.under_load(Leads::Refusals, false, || {
            let holder = rusqlite::Connection::open(&database).expect("opens");
            holder
                .busy_timeout(Duration::from_secs(10))
                .expect("busy timeout");
            holder.execute_batch("BEGIN IMMEDIATE").expect("write lock");
            holder
        });
        run.tally.faults += 1;
        run.refused_round(Some(LOCKED_REFUSAL_WITHIN), false);
        run.assert_unready(&[locked, "a lock held by another process"]);
        run.assert_logged(logged, locked, &[]);
        run.under_load(Leads::Answers, false, || {
            holder.execute_batch("ROLLBACK").expect("lock released");
            drop(holder);
        });
        run.recover("a held write lock");

        // Read-only: the kernel refuses while the gateway holds its ledger open for writing
        // (see LIMITATION above), and the gateway goes on answering.
        let (remounted, said) = tmpfs.remount("ro");
        if remounted {
            let (back, said) = tmpfs.remount("rw");
            assert!(back, "remount,rw: {said}");
        }
        assert!(
            !remounted && said.contains("busy"),
            "remount,ro of the ledger's file system while serving: expected the kernel to \
             refuse it as busy, got success={remounted} `{said}`; if it now succeeds, make \
             this a read-only fault with 503s and recovery"
        );
        remounts_refused += 1;
        run.healthy_round();
    }

    let extra = format!(" ro_remounts_refused_by_kernel={remounts_refused}");
    run.finish("sqlite", &extra);
    drop(upstream);
    drop(tmpfs);
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// What a transaction on a session `pg_terminate_backend` ended fails with: the server's
/// message, or, when the session died while the client was sending, the socket's error.
const TERMINATED: [&str; 3] = [
    "terminating connection due to administrator command",
    "error communicating with the server",
    "connection closed",
];

/// A database of the test's own on the test server (a read-only setting on it must not
/// reach other tests), dropped when this is dropped.
struct OwnDatabase {
    server: String,
    name: String,
    url: String,
}

impl OwnDatabase {
    fn create() -> OwnDatabase {
        let server = ascribe_store::testing::postgres_server_url();
        let random =
            RandomState::new().hash_one((std::time::SystemTime::now(), std::process::id()));
        let name = format!("ascribe_storage_faults_{random:016x}");
        admin(&server, &format!("CREATE DATABASE {name}"));
        let (address, query) = match server.split_once('?') {
            Some((address, query)) => (address, format!("?{query}")),
            None => (server.as_str(), String::new()),
        };
        let (prefix, _) = address
            .rsplit_once('/')
            .expect("a postgres:// URL with a database");
        let url = format!("{prefix}/{name}{query}");
        OwnDatabase { server, name, url }
    }

    /// Ends every session on the database but the caller's own, waiting until they ended;
    /// returns how many there were.
    fn terminate_sessions(&self) -> usize {
        let mut backend = connect(&self.server);
        let rows = backend
            .client()
            .query(
                &format!(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                     WHERE datname = '{}' AND pid <> pg_backend_pid()",
                    self.name
                ),
                &[],
            )
            .expect("sessions terminated");
        let ended = rows.iter().filter(|row| row.get::<_, bool>(0)).count();
        assert_eq!(ended, rows.len(), "every session ended in time");
        ended
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        if let Ok(mut backend) = PostgresBackend::connect(&self.server) {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = backend.client().batch_execute(&sql);
        }
    }
}

fn connect(url: &str) -> PostgresBackend {
    PostgresBackend::connect(url).unwrap_or_else(|error| {
        panic!("PostgreSQL is required by this test and is not reachable at {url}: {error}")
    })
}

/// Runs `sql` as the test server's administrator.
fn admin(server: &str, sql: &str) {
    connect(server)
        .client()
        .batch_execute(sql)
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

#[test]
fn postgres_ledger_read_only_or_locked_refuses_then_recovers() {
    let home = tempfile::tempdir().expect("tempdir");
    let database = OwnDatabase::create();
    let upstream = ascribe_gateway::testing::StandInUpstream::start().expect("stand-in");
    let mut run = start(home.path(), database.url.clone(), &upstream.base_url());
    let name = &database.name;

    for _ in 0..rounds() {
        // Read-only: new sessions are read-only; the gateway's sessions are ended, so it
        // reconnects into read-only ones.
        let read_only = "read-only transaction";
        let logged = run.unrecorded_lines();
        run.under_load(Leads::Refusals, true, || {
            admin(
                &database.server,
                &format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
            );
            let ended = database.terminate_sessions();
            assert!(ended >= 1, "the gateway had sessions to end");
        });
        run.tally.faults += 1;
        run.refused_round(None, true);
        run.assert_unready(&[read_only]);
        run.assert_logged(logged, read_only, &TERMINATED);
        run.under_load(Leads::Answers, true, || {
            admin(
                &database.server,
                &format!("ALTER DATABASE {name} RESET default_transaction_read_only"),
            );
            database.terminate_sessions();
        });
        run.recover("a read-only database");

        // Locked: another session holds an exclusive lock on the entries table.
        let lock_timeout = "lock timeout";
        let logged = run.unrecorded_lines();
        let mut holder = run.under_load(Leads::Refusals, false, || {
            let mut holder = connect(&database.url);
            holder
                .client()
                .batch_execute(&format!(
                    "BEGIN; LOCK TABLE {ENTRIES_TABLE} IN ACCESS EXCLUSIVE MODE"
                ))
                .expect("table locked");
            holder
        });
        run.tally.faults += 1;
        run.refused_round(Some(LOCKED_REFUSAL_WITHIN), false);
        run.assert_unready(&[lock_timeout, "a lock held by another process"]);
        run.assert_logged(logged, lock_timeout, &[]);
        run.under_load(Leads::Answers, false, || {
            holder
                .client()
                .batch_execute("ROLLBACK")
                .expect("lock released");
            drop(holder);
        });
        run.recover("a locked entries table");
    }

    run.finish("postgres", "");
    drop(upstream);
    drop(database);
}
