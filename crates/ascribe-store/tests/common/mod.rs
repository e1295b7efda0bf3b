//! Shared helpers of the store's integration tests: fresh databases on both backends, a
//! controllable clock, the attacker's raw SQL access, and the load binary.
//!
//! Every test gets its own database: a temporary directory for SQLite, and for PostgreSQL a
//! fresh schema `t_<random hex>` selected with `options=-c search_path=...` in the URL and
//! dropped again when the test's [`TestDb`] is dropped. PostgreSQL is found at
//! `ASCRIBE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`); a server
//! that cannot be reached fails the test, it never skips it.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{BufRead as _, BufReader};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use ascribe_ledger::audit_trail::StoredHead;
use ascribe_ledger::{Hash, NoteSigner, NoteVerifier, Timestamp, TreeHead};
use ascribe_store::query;
use ascribe_store::{
    open_backend, verify_ledger, Backend, Clock, DatabaseLocation, Ledger, SqlValue, StoredEntry,
    TreeHeadPolicy, VerifyReport,
};
use sha2::{Digest as _, Sha256};

/// The origin (key name) of the test ledgers.
pub const ORIGIN: &str = "ascribe.test/ledger";

/// Where the tests find PostgreSQL unless `ASCRIBE_TEST_POSTGRES` says otherwise.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The path of the load generator binary built with this crate.
pub const LOAD_BIN: &str = env!("CARGO_BIN_EXE_ascribe-ledger-load");

/// The two databases a ledger can live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema on the test PostgreSQL server.
    Postgres,
}

/// Every backend, in the order [`on_each_backend`] runs them.
pub const BACKENDS: [Kind; 2] = [Kind::Sqlite, Kind::Postgres];

/// Runs the same check against every backend; each backend runs even when another failed,
/// and the test then fails naming every backend that failed.
pub fn on_each_backend(check: impl Fn(Kind)) {
    on_backends(&BACKENDS, check);
}

/// Runs the same check against the given backends, as [`on_each_backend`] does.
pub fn on_backends(kinds: &[Kind], check: impl Fn(Kind)) {
    let mut failed = Vec::new();
    for &kind in kinds {
        eprintln!("--- backend {kind:?}");
        let started = std::time::Instant::now();
        if catch_unwind(AssertUnwindSafe(|| check(kind))).is_err() {
            failed.push(kind);
        }
        eprintln!("--- backend {kind:?} took {:.2?}", started.elapsed());
    }
    assert!(
        failed.is_empty(),
        "the check failed on {failed:?}; see the panics above"
    );
}

/// The PostgreSQL URL of the test server (without a schema).
pub fn postgres_url() -> String {
    std::env::var("ASCRIBE_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// A plain client on the test server; panics with a clear message when it is unreachable.
pub fn admin_client() -> postgres::Client {
    let url = postgres_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|error| {
        panic!(
            "PostgreSQL is not reachable at {url} ({}); these tests need it: start it or \
             point ASCRIBE_TEST_POSTGRES at a server with trust authentication",
            with_cause(&error)
        )
    })
}

/// A PostgreSQL client error with its cause (its own text names only the kind of error).
pub fn with_cause(error: &postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// A random lowercase hex string of `2 * bytes` digits (not cryptographic).
pub fn random_hex(bytes: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    while out.len() < bytes * 2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out.truncate(bytes * 2);
    out
}

/// A random number in `[low, high)` (not cryptographic).
pub fn random_below(low: u64, high: u64) -> u64 {
    let value = u64::from_str_radix(&random_hex(8), 16).expect("hex");
    low + value % (high - low)
}

/// One test's own database, removed when dropped.
pub struct TestDb {
    /// Which backend it is.
    pub kind: Kind,
    /// `sqlite://PATH` or a `postgres://` URL that selects the test's schema.
    pub url: String,
    /// The PostgreSQL schema, if any.
    pub schema: Option<String>,
    /// The temporary directory (the SQLite file and key files live in it).
    pub dir: tempfile::TempDir,
}

impl TestDb {
    /// Makes a fresh, empty database of the given kind.
    pub fn new(kind: Kind) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        match kind {
            Kind::Sqlite => TestDb {
                kind,
                url: format!("sqlite://{}", dir.path().join("ledger.db").display()),
                schema: None,
                dir,
            },
            Kind::Postgres => {
                let schema = format!("t_{}", random_hex(8));
                admin_client()
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .unwrap_or_else(|error| {
                        panic!("cannot create schema {schema}: {}", with_cause(&error))
                    });
                let base = postgres_url();
                let separator = if base.contains('?') { '&' } else { '?' };
                TestDb {
                    kind,
                    url: format!("{base}{separator}options=-c%20search_path%3D{schema}"),
                    schema: Some(schema),
                    dir,
                }
            }
        }
    }

    /// The database as `--db` names it.
    pub fn location(&self) -> DatabaseLocation {
        self.url.parse().expect("test database location parses")
    }

    /// A new connection to the database.
    pub fn backend(&self) -> Box<dyn Backend> {
        open_backend(&self.location(), true)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", self.url))
    }

    /// A directory for key files, inside the test's temporary directory.
    pub fn key_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            // Best effort: a test that already panics must not panic again here.
            if let Ok(mut client) = postgres::Client::connect(&postgres_url(), postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// A clock the test sets; every [`TestClock`] cloned from one shares its time.
#[derive(Clone, Debug)]
pub struct TestClock {
    micros: Arc<AtomicI64>,
}

/// 2027-01-15T08:00:00Z, where test clocks start.
pub const CLOCK_START_MICROS: i64 = 1_800_000_000_000_000;

impl TestClock {
    /// A clock standing at [`CLOCK_START_MICROS`].
    pub fn new() -> TestClock {
        TestClock {
            micros: Arc::new(AtomicI64::new(CLOCK_START_MICROS)),
        }
    }

    /// Sets the time, possibly backwards.
    pub fn set_micros(&self, micros: i64) {
        self.micros.store(micros, Ordering::SeqCst);
    }

    /// Moves the time by `delta` microseconds (negative goes back).
    pub fn advance_micros(&self, delta: i64) {
        self.micros.fetch_add(delta, Ordering::SeqCst);
    }

    /// The current time.
    pub fn micros(&self) -> i64 {
        self.micros.load(Ordering::SeqCst)
    }
}

impl Default for TestClock {
    fn default() -> TestClock {
        TestClock::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.micros())
    }
}

/// The test ledgers' signing key.
pub fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [7u8; 32])
}

/// Another key with the same name: what a forger without the private key has.
pub fn forger() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [66u8; 32])
}

/// The trusted public key of the test ledgers.
pub fn verifier() -> NoteVerifier {
    signer().verifier()
}

/// Initialises the database's ledger and opens a writer on a new connection.
pub fn init_ledger(db: &TestDb, clock: &TestClock, policy: TreeHeadPolicy) -> Ledger {
    let mut backend = db.backend();
    Ledger::init(backend.as_mut(), &signer()).expect("ledger initialises");
    open_ledger(db, clock, policy)
}

/// Opens a writer on an initialised database over a new connection.
pub fn open_ledger(db: &TestDb, clock: &TestClock, policy: TreeHeadPolicy) -> Ledger {
    Ledger::open(db.backend(), signer(), Box::new(clock.clone()), policy).expect("ledger opens")
}

/// Runs `verify_ledger` against the test key on a new connection.
pub fn verify(db: &TestDb) -> VerifyReport {
    verify_with(db, &verifier())
}

/// Runs `verify_ledger` against `trusted` on a new connection.
pub fn verify_with(db: &TestDb, trusted: &NoteVerifier) -> VerifyReport {
    let mut backend = db.backend();
    verify_ledger(backend.as_mut(), trusted, &mut |_, _| {}).expect("database is readable")
}

/// Every stored entry row, in `seq` order.
pub fn all_entries(db: &TestDb) -> Vec<StoredEntry> {
    let mut backend = db.backend();
    query::entries(backend.as_mut(), 0, u64::MAX >> 12).expect("entries are readable")
}

/// Every stored tree head, smallest first.
pub fn all_heads(db: &TestDb) -> Vec<StoredHead> {
    let mut backend = db.backend();
    query::tree_heads(backend.as_mut())
        .expect("tree heads are readable")
        .into_iter()
        .map(|record| record.head)
        .collect()
}

/// Checks a stored head's signature with the test key and returns what it states.
pub fn verified_head(head: &StoredHead) -> TreeHead {
    let stated = verifier()
        .verify_note(&head.note)
        .unwrap_or_else(|error| panic!("head at size {} does not verify: {error}", head.size));
    assert_eq!(stated.size, head.size, "head filed under another size");
    stated
}

/// The lowercase hex SHA-256 of `bytes`, as the load binary prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hex root over `leaves`, as `VerifyReport::root` states it.
pub fn root_hex(leaves: &[Hash]) -> String {
    hex::encode(ascribe_ledger::merkle::root_of(leaves))
}

/// Runs statements as an attacker with full database access, on a new connection, in one
/// transaction (`$1`-style parameters work on both backends).
pub fn attack(db: &TestDb, statements: &[(&str, Vec<SqlValue>)]) {
    let mut backend = db.backend();
    backend
        .write(&mut |tx| {
            for (sql, params) in statements {
                tx.execute(sql, params)?;
            }
            Ok(())
        })
        .unwrap_or_else(|error| panic!("attacker's statements failed: {error}"));
}

/// Runs one statement as an ordinary client and returns the database's answer.
pub fn try_execute(db: &TestDb, sql: &str) -> Result<u64, ascribe_store::StoreError> {
    let mut backend = db.backend();
    let mut changed = 0;
    backend.write(&mut |tx| {
        changed = tx.execute(sql, &[])?;
        Ok(())
    })?;
    Ok(changed)
}

/// What an attacker runs first: switch off the append-only triggers.
pub fn disable_append_only_guards(db: &TestDb) {
    let statements: Vec<String> = match db.kind {
        Kind::Sqlite => ["ledger_entries", "ledger_tree_heads"]
            .iter()
            .flat_map(|table| {
                ["update", "delete"].map(|op| format!("DROP TRIGGER {table}_refuse_{op}"))
            })
            .collect(),
        Kind::Postgres => ["ledger_entries", "ledger_tree_heads"]
            .iter()
            .map(|table| format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .collect(),
    };
    let statements: Vec<(&str, Vec<SqlValue>)> = statements
        .iter()
        .map(|sql| (sql.as_str(), Vec::new()))
        .collect();
    attack(db, &statements);
}

/// A minimal executor: polls `future` on this thread until it is ready.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::park();
    }
}

/// Polls a future once (which is enough for `Appender::append` to queue its entry) and
/// returns it, still pending, to be finished with [`block_on`].
pub fn poll_once<F: Future>(future: F) -> std::pin::Pin<Box<F>> {
    let mut future = Box::pin(future);
    let mut context = Context::from_waker(Waker::noop());
    assert!(
        future.as_mut().poll(&mut context).is_pending(),
        "the append finished without the writer"
    );
    future
}

/// One acknowledgement printed by the load binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The entry's seq.
    pub seq: u64,
    /// Hex SHA-256 of the entry's canonical bytes.
    pub sha256: String,
}

/// A running load binary whose stdout is read line by line on a thread.
pub struct LoadProcess {
    /// The process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<thread::JoinHandle<()>>,
}

/// Starts the load binary on `db` with the test's key directory and extra arguments.
pub fn spawn_load(db: &TestDb, extra: &[&str]) -> LoadProcess {
    let key_dir = db.key_dir();
    let mut child = Command::new(LOAD_BIN)
        .arg("--db")
        .arg(&db.url)
        .arg("--key-dir")
        .arg(&key_dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {LOAD_BIN}: {error}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, lines) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                // A line cut off by SIGKILL has no newline: it was never fully printed.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if sender.send(line.trim_end().to_owned()).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    LoadProcess {
        child,
        lines,
        reader: Some(reader),
    }
}

impl LoadProcess {
    /// Waits for the next complete line of output; `None` once stdout is closed.
    pub fn next_line(&self, timeout: std::time::Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the load binary printed nothing for {timeout:?}")
            }
        }
    }

    /// Waits for the process to end and returns its status and every remaining line.
    pub fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.child.wait().expect("load binary can be waited for");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stdout reader thread");
        }
        (status, self.lines.try_iter().collect())
    }
}

/// Parses `ack <seq> <sha256>` lines, failing on anything else but the closing JSON line.
pub fn parse_acks(lines: &[String]) -> Vec<Ack> {
    lines
        .iter()
        .filter(|line| !line.starts_with('{'))
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["ack", seq, sha256] if sha256.len() == 64 => Ack {
                    seq: seq.parse().expect("ack seq is a number"),
                    sha256: (*sha256).to_owned(),
                },
                _ => panic!("unexpected output line from the load binary: {line:?}"),
            }
        })
        .collect()
}

/// Runs the load binary to completion and returns its acks and closing summary; panics
/// unless it exits successfully.
pub fn run_load(db: &TestDb, extra: &[&str]) -> (Vec<Ack>, serde_json::Value) {
    let process = spawn_load(db, extra);
    let (status, lines) = process.finish();
    assert!(status.success(), "load binary failed with {status}");
    let summary = lines
        .iter()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary in {lines:?}"));
    let summary: serde_json::Value = serde_json::from_str(summary).expect("summary is JSON");
    (parse_acks(&lines), summary)
}

/// Checks every ack against the stored entries: present, with the same bytes.
pub fn assert_acks_stored(acks: &[Ack], stored: &[StoredEntry]) {
    for ack in acks {
        let row = usize::try_from(ack.seq)
            .ok()
            .and_then(|index| stored.get(index))
            .unwrap_or_else(|| panic!("acknowledged seq {} is not stored", ack.seq));
        assert_eq!(
            row.seq, ack.seq,
            "rows are not contiguous before seq {}",
            ack.seq
        );
        assert_eq!(
            sha256_hex(row.entry.as_bytes()),
            ack.sha256,
            "stored entry seq {} is not the acknowledged one",
            ack.seq
        );
    }
}

/// The public key file the load binary's `--init` wrote.
pub fn load_verifier(key_dir: &Path) -> NoteVerifier {
    ascribe_store::SigningKeyFiles::in_directory(key_dir)
        .load_verifier()
        .expect("public key file")
}
