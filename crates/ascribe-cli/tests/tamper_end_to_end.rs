//! Tampering end to end, on SQLite and on PostgreSQL: inferences are recorded through the real
//! `ascribe serve` (a stand-in upstream answers), the receipts it hands out are kept, the
//! server is stopped, and then an attacker with rights on the database switches the
//! append-only triggers off and changes the ledger behind its back. Each attack runs on a
//! fresh copy of the recorded ledger, and the auditor's commands must catch it:
//!
//! - an entry's bytes edited, a row deleted, two rows swapped: `ascribe verify` exits 1 and
//!   names the exact first bad `seq`, in text and in `--json`;
//! - an entry edited with its leaf hash rewritten: the first `seq` after the last signed tree
//!   head that did not cover it;
//! - a forged row appended: a row with a wrong leaf hash is named by `ascribe verify`; a
//!   well-formed one is an unsigned tail, which `ascribe verify --all-signed` names (the
//!   server signed a head over everything when it stopped);
//! - an inference's entry removed: its receipt's signature still verifies, but
//!   `ascribe receipt verify --against-ledger` finds no inclusion proof for it in the latest
//!   signed tree head and says why; `ascribe ledger proof` cannot prove it either. This holds
//!   even when the attacker also removed every head over it, which `ascribe verify` alone
//!   cannot tell from a ledger that never had it.
//!
//! Fast version: 6 inferences per store, one target per attack (about 9 s, both stores in
//! parallel). `ASCRIBE_LONG_TESTS=1`: 30 inferences, every inference attacked in turn (about
//! 70 s, most of it copying PostgreSQL ledgers).

use std::process::Output;
use std::time::{Duration, Instant};

use ascribe_ledger::merkle::leaf_hash;
use ascribe_store::{open_backend, Backend, DatabaseLocation, SqlValue};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

mod common;

use common::load::client;
use common::{long, Ascribe, Scenario, Server, CHAT};

const SCENARIOS: &[Scenario] = &[CHAT];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        }
    }
}

/// One inference answered through `ascribe serve`: its id, the receipt handed out with it and
/// the `seq` the receipt names.
struct Answered {
    inference_id: String,
    receipt: String,
    seq: u64,
    leaf_hex: String,
}

/// The recorded ledger every attack starts from.
struct Recorded<'a> {
    store: Store,
    ascribe: Ascribe<'a>,
    answered: Vec<Answered>,
    entries: u64,
    copies: std::cell::Cell<u32>,
}

/// Records inferences through `ascribe serve` and stops it; the ledger verifies with every
/// entry signed.
fn record(store: Store, home: &std::path::Path, inferences: usize) -> Recorded<'_> {
    let db = match store {
        Store::Sqlite => "sqlite://ledger.db".to_owned(),
        Store::Postgres => ascribe_store::testing::fresh_postgres_schema(),
    };
    let ascribe = Ascribe { home, db };
    let upstream = ascribe_gateway::testing::StandInUpstream::start().expect("stand-in");
    let token = ascribe.init_with_scenarios(&upstream.base_url(), SCENARIOS, "UNUSED_KEY");

    let client = client(Duration::from_secs(30));
    let mut server = Server::start(&ascribe, &[], &[]);
    let mut answered = Vec::new();
    for n in 0..inferences {
        let body = json!({"model": "chat-v1", "messages": [{"role": "user", "content": "hi"}]});
        let response = client
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth(&token)
            .header("Ascribe-Decision", format!("case-{n}"))
            .json(&body)
            .send()
            .expect("answered");
        assert_eq!(response.status(), 200, "{}", server.log());
        let header = |name: &str| {
            response.headers()[name]
                .to_str()
                .expect("text header")
                .to_owned()
        };
        let (inference_id, receipt) = (header("ascribe-inference-id"), header("ascribe-receipt"));
        let checked = ascribe.ok(&["receipt", "verify", &receipt, "--json"]);
        assert_eq!(checked["receipt"]["inference_id"], inference_id.as_str());
        answered.push(Answered {
            inference_id,
            seq: checked["receipt"]["seq"].as_u64().expect("seq"),
            leaf_hex: checked["receipt"]["leaf_hash"]
                .as_str()
                .expect("leaf")
                .to_owned(),
            receipt,
        });
    }
    assert!(server.terminate().success(), "{}", server.log());

    let report = ascribe.ok(&["verify", "--all-signed", "--json"]);
    assert_eq!(report["ok"], true, "the untouched ledger: {report}");
    let entries = report["entries"].as_u64().expect("entries");
    let seqs: Vec<u64> = answered.iter().map(|a| a.seq).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    assert!(seqs.last().is_some_and(|&last| last < entries));
    Recorded {
        store,
        ascribe,
        answered,
        entries,
        copies: std::cell::Cell::new(0),
    }
}

/// A fresh copy of the recorded ledger, append-only triggers included, as `ascribe` sees it.
struct LedgerCopy<'a> {
    ascribe: Ascribe<'a>,
}

impl Recorded<'_> {
    fn copy(&self) -> LedgerCopy<'_> {
        let n = self.copies.get() + 1;
        self.copies.set(n);
        let db = match self.store {
            Store::Sqlite => {
                let name = format!("copy-{n}.db");
                let source = rusqlite::Connection::open(self.ascribe.home.join("ledger.db"))
                    .expect("source opens");
                let target = self.ascribe.home.join(&name);
                source
                    .execute("VACUUM INTO ?1", [target.to_str().expect("utf-8 path")])
                    .expect("copied");
                format!("sqlite://{name}")
            }
            Store::Postgres => {
                let url = ascribe_store::testing::fresh_postgres_schema();
                let source = schema_of(&self.ascribe.db);
                let mut backend = backend_of(&url);
                // The product's own tables and triggers, then the recorded rows.
                backend.create_schema().expect("schema");
                backend
                    .write(&mut |tx| {
                        let tables = tx.query(
                            "SELECT table_name FROM information_schema.tables \
                             WHERE table_schema = $1 ORDER BY table_name",
                            &[source.as_str().into()],
                        )?;
                        for table in tables {
                            let table = table[0].text("table_name")?.to_owned();
                            tx.execute(
                                &format!(
                                    "CREATE TABLE IF NOT EXISTS {table} \
                                     (LIKE {source}.{table} INCLUDING ALL)"
                                ),
                                &[],
                            )?;
                            tx.execute(
                                &format!("INSERT INTO {table} SELECT * FROM {source}.{table}"),
                                &[],
                            )?;
                        }
                        Ok(())
                    })
                    .expect("copied");
                url
            }
        };
        let copy = LedgerCopy {
            ascribe: Ascribe {
                home: self.ascribe.home,
                db,
            },
        };
        let report = copy.ascribe.ok(&["verify", "--all-signed", "--json"]);
        assert_eq!(report["entries"], self.entries, "the copy: {report}");
        // The database itself refuses changes until the attacker switches its guards off.
        let refused = copy.backend().write(&mut |tx| {
            tx.execute("UPDATE ledger_entries SET actor = 'x' WHERE seq = 0", &[])?;
            Ok(())
        });
        assert!(refused.is_err(), "an UPDATE went through the guards");
        copy
    }
}

fn schema_of(url: &str) -> String {
    let (_, schema) = url
        .split_once("search_path%3D")
        .expect("a schema in the URL");
    schema.to_owned()
}

fn backend_of(db: &str) -> Box<dyn Backend> {
    let location: DatabaseLocation = db.parse().expect("database URL");
    open_backend(&location, false).expect("database opens")
}

/// A row of `ledger_entries` as stored.
#[derive(Clone)]
struct Row {
    time: String,
    kind: String,
    actor: String,
    entry: String,
    leaf: Vec<u8>,
}

impl LedgerCopy<'_> {
    fn backend(&self) -> Box<dyn Backend> {
        match self.ascribe.db.strip_prefix("sqlite://") {
            // `ascribe` runs in the home directory, where the relative path points.
            Some(path) => backend_of(&format!(
                "sqlite://{}",
                self.ascribe.home.join(path).display()
            )),
            None => backend_of(&self.ascribe.db),
        }
    }

    /// Switches the append-only guards off, then runs `statements` in one transaction.
    fn attack(&self, statements: &[(&str, Vec<SqlValue>)]) {
        let guards_off: Vec<String> = if self.ascribe.db.starts_with("sqlite://") {
            ["ledger_entries", "ledger_tree_heads"]
                .iter()
                .flat_map(|table| {
                    ["update", "delete"]
                        .map(|op| format!("DROP TRIGGER IF EXISTS {table}_refuse_{op}"))
                })
                .collect()
        } else {
            ["ledger_entries", "ledger_tree_heads"]
                .iter()
                .map(|table| format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
                .collect()
        };
        self.backend()
            .write(&mut |tx| {
                for sql in &guards_off {
                    tx.execute(sql, &[])?;
                }
                for (sql, params) in statements {
                    tx.execute(sql, params)?;
                }
                Ok(())
            })
            .unwrap_or_else(|error| panic!("the attacker's statements failed: {error}"));
    }

    fn row(&self, seq: u64) -> Row {
        let rows = ascribe_store::query::entries(self.backend().as_mut(), seq, 1).expect("read");
        let row = rows.into_iter().next().expect("the row");
        assert_eq!(row.seq, seq);
        Row {
            time: row.time,
            kind: row.kind,
            actor: row.actor,
            entry: row.entry,
            leaf: row.leaf_hash.to_vec(),
        }
    }

    fn head_sizes(&self) -> Vec<u64> {
        let heads = ascribe_store::query::tree_heads(self.backend().as_mut()).expect("heads");
        heads.iter().map(|head| head.head.size).collect()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.ascribe.command(args).output().expect("ascribe runs")
    }
}

/// `Err(why)` unless `condition` holds.
fn ensure(condition: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(why())
    }
}

/// Runs `ascribe verify` (with `extra` flags) in text and in JSON; both must fail at `seq`
/// with exit code 1, and the error must contain `words`.
fn verify_names(
    copy: &LedgerCopy<'_>,
    extra: &[&str],
    seq: u64,
    words: &str,
) -> Result<(), String> {
    let text = copy.run(&[&["verify"][..], extra].concat());
    let stdout = String::from_utf8_lossy(&text.stdout);
    ensure(text.status.code() == Some(1), || {
        format!("verify {extra:?} exited {:?}: {stdout}", text.status.code())
    })?;
    ensure(
        stdout.contains(&format!("FAILED at seq {seq}:")) && stdout.contains(words),
        || format!("verify {extra:?} should name seq {seq} with {words:?}: {stdout}"),
    )?;
    let json = copy.run(&[&["verify", "--json"][..], extra].concat());
    ensure(json.status.code() == Some(1), || {
        "verify --json passed".to_owned()
    })?;
    let report: Value = serde_json::from_slice(&json.stdout).map_err(|e| e.to_string())?;
    ensure(
        report["ok"] == false
            && report["first_bad_seq"] == seq
            && report["entries"] == seq
            && report["root"].is_null()
            && report["error"]
                .as_str()
                .is_some_and(|error| error.contains(words)),
        || format!("verify --json {extra:?} should name seq {seq} with {words:?}: {report}"),
    )
}

/// Runs `ascribe receipt verify --against-ledger`: the signature is valid, and the ledger
/// check fails with an error containing `words`, in JSON and in text.
fn receipt_not_in_ledger(
    copy: &LedgerCopy<'_>,
    answered: &Answered,
    words: &str,
) -> Result<(), String> {
    let receipt = &answered.receipt;
    let signature_only = copy.run(&["receipt", "verify", receipt, "--json"]);
    assert_eq!(
        signature_only.status.code(),
        Some(0),
        "the signature stays valid"
    );
    let output = copy.run(&["receipt", "verify", receipt, "--against-ledger", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    ensure(
        output.status.code() == Some(1)
            && report["ok"] == false
            && report["signature_valid"] == true
            && report["receipt"]["seq"] == answered.seq
            && report["ledger"]["included"] == false
            && report["ledger"]["error"]
                .as_str()
                .is_some_and(|error| error.contains(words)),
        || {
            format!(
                "the receipt of seq {} should fail with {words:?}: {report}",
                answered.seq
            )
        },
    )?;
    let text = copy.run(&["receipt", "verify", receipt, "--against-ledger"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    ensure(
        text.status.code() == Some(1)
            && stdout.starts_with("FAILED: the receipt's signature is valid")
            && stdout.contains(words),
        || format!("receipt verify (text): {stdout}"),
    )
}

/// Forgeries tried, and the checks that let one through.
#[derive(Default)]
struct Tally {
    forgeries: u64,
    accepted: Vec<String>,
}

impl Tally {
    /// Counts one forgery; `caught` is the outcome of every check that must catch it.
    fn forgery(&mut self, what: &str, caught: &[Result<(), String>]) {
        self.forgeries += 1;
        let missed: Vec<&str> = caught
            .iter()
            .filter_map(|outcome| outcome.as_ref().err())
            .map(String::as_str)
            .collect();
        if !missed.is_empty() {
            self.accepted.push(format!("{what}: {}", missed.join("; ")));
        }
    }
}

/// The entry text with its `seq` and `time` members replaced; still canonical JSON, since
/// `seq` and `time` are the last members in sorted order.
fn with_seq_and_time(entry: &str, seq: u64, time: &str) -> String {
    let start = entry.rfind(",\"seq\":").expect("a seq member");
    format!("{},\"seq\":{seq},\"time\":\"{time}\"}}", &entry[..start])
}

fn insert_row(seq: u64, row: &Row) -> (&'static str, Vec<SqlValue>) {
    (
        "INSERT INTO ledger_entries (seq, time, kind, actor, entry, leaf_hash) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            seq.into(),
            row.time.clone().into(),
            row.kind.clone().into(),
            row.actor.clone().into(),
            row.entry.clone().into(),
            row.leaf.clone().into(),
        ],
    )
}

fn replace_row(seq: u64, row: &Row) -> (&'static str, Vec<SqlValue>) {
    (
        "UPDATE ledger_entries SET time = $1, kind = $2, actor = $3, entry = $4, \
         leaf_hash = $5 WHERE seq = $6",
        vec![
            row.time.clone().into(),
            row.kind.clone().into(),
            row.actor.clone().into(),
            row.entry.clone().into(),
            row.leaf.clone().into(),
            seq.into(),
        ],
    )
}

/// Every attack, each on a fresh copy of the recorded ledger.
fn attack_all(recorded: &Recorded<'_>, tally: &mut Tally) {
    let answered = &recorded.answered;
    let n = recorded.entries;
    let targets: Vec<&Answered> = if long() {
        answered.iter().collect()
    } else {
        vec![&answered[answered.len() / 2]]
    };

    // An entry's bytes edited in place: one letter of the inference id, or the first entry.
    let mut edited: Vec<u64> = targets.iter().map(|a| a.seq).collect();
    edited.push(0);
    for seq in edited {
        let copy = recorded.copy();
        let original = copy.row(seq).entry;
        let forged = match answered.iter().find(|a| a.seq == seq) {
            Some(target) => {
                let id = &target.inference_id;
                let changed = format!("{}Z", &id[..id.len() - 1]);
                assert_ne!(&changed, id);
                original.replacen(id.as_str(), &changed, 1)
            }
            None => original.replacen("\"actor\":\"", "\"actor\":\"X", 1),
        };
        assert_ne!(forged, original);
        copy.attack(&[(
            "UPDATE ledger_entries SET entry = $1 WHERE seq = $2",
            vec![forged.into(), seq.into()],
        )]);
        let words = format!("entry seq {seq}: stored leaf hash does not match");
        tally.forgery(
            &format!("entry {seq} edited"),
            &[verify_names(&copy, &[], seq, &words)],
        );
    }

    // An entry rewritten with its leaf hash: named from the last head that did not cover it;
    // the receipt names the exact entry.
    for target in &targets {
        let copy = recorded.copy();
        let seq = target.seq;
        let mut row = copy.row(seq);
        let original = row.entry.clone();
        row.entry = original.replacen("standin:openai-chat", "standin:other-model", 1);
        assert_ne!(row.entry, original);
        row.leaf = leaf_hash(row.entry.as_bytes()).to_vec();
        copy.attack(&[replace_row(seq, &row)]);
        let heads = copy.head_sizes();
        let first_bad = heads.iter().copied().filter(|&size| size <= seq).max();
        let first_bad = first_bad.unwrap_or(0);
        let next = heads.iter().copied().find(|&size| size > seq);
        let next = next.expect("the head signed at stop covers every entry");
        let words = format!("an entry in seq {first_bad}..{next} was changed");
        let leaf = &target.leaf_hex;
        let changed =
            format!("the entry stored at seq {seq} no longer hashes to the receipt's leaf {leaf}");
        tally.forgery(
            &format!("entry {seq} rewritten with its leaf hash"),
            &[
                verify_names(&copy, &[], first_bad, &words),
                receipt_not_in_ledger(&copy, target, &changed),
            ],
        );
    }

    // A row deleted: `verify` names the gap, the receipt has no inclusion proof, and the
    // ledger's own proof command cannot prove the entry either.
    for target in &targets {
        let copy = recorded.copy();
        let seq = target.seq;
        copy.attack(&[(
            "DELETE FROM ledger_entries WHERE seq = $1",
            vec![seq.into()],
        )]);
        // The last row deleted is a removed tail, which the head signed over it reveals.
        let (words, proof_words) = if seq + 1 < n {
            let words = format!(
                "entry seq {seq} is missing: the next stored row is seq {}",
                seq + 1
            );
            (words, format!("entry seq {seq} is missing"))
        } else {
            let words = format!("it ends before seq {seq}; the tail was removed");
            (words, format!("not inside a tree of size {seq}"))
        };
        let size = copy.head_sizes().last().expect("a head").to_string();
        let index = seq.to_string();
        let proof = copy.run(&["ledger", "proof", "--index", &index, "--size", &size]);
        let stderr = String::from_utf8_lossy(&proof.stderr).into_owned();
        tally.forgery(
            &format!("entry {seq} deleted"),
            &[
                verify_names(&copy, &[], seq, &words),
                receipt_not_in_ledger(
                    &copy,
                    target,
                    &format!("there is no inclusion proof of entry seq {seq}"),
                ),
                ensure(
                    proof.status.code() == Some(2) && stderr.contains(&proof_words),
                    || format!("ledger proof: {stderr}"),
                ),
            ],
        );
    }

    // Two rows swapped (reordered), each with its own leaf hash: the lower seq is named.
    let pairs: Vec<(u64, u64)> = if long() {
        answered.windows(2).map(|w| (w[0].seq, w[1].seq)).collect()
    } else {
        vec![(answered[0].seq, answered[answered.len() - 1].seq)]
    };
    for (low, high) in pairs {
        let copy = recorded.copy();
        let (low_row, high_row) = (copy.row(low), copy.row(high));
        copy.attack(&[replace_row(low, &high_row), replace_row(high, &low_row)]);
        let words = format!("row seq {low} holds the entry of seq {high}: rows were moved");
        tally.forgery(
            &format!("rows {low} and {high} swapped"),
            &[verify_names(&copy, &[], low, &words)],
        );
    }

    // A forged inference appended after the last entry, as an attacker who knows the format
    // writes it: a copy of a real inference under the next seq, at the last entry's time.
    let pristine = recorded.copy();
    let last = pristine.row(n - 1);
    let template = pristine.row(targets[0].seq);
    let mut forged = template.clone();
    forged.time = last.time.clone();
    forged.entry = with_seq_and_time(&template.entry, n, &last.time);
    forged.leaf = leaf_hash(forged.entry.as_bytes()).to_vec();

    // With a leaf hash that does not match its bytes, `verify` names it.
    let copy = recorded.copy();
    let mut careless = forged.clone();
    careless.leaf = template.leaf.clone();
    copy.attack(&[insert_row(n, &careless)]);
    let words = format!("entry seq {n}: stored leaf hash does not match");
    tally.forgery(
        "row appended with a wrong leaf hash",
        &[verify_names(&copy, &[], n, &words)],
    );

    // Well-formed, it is an unsigned tail: plain `verify` counts it in (documented: a writer
    // may not have signed yet), and `--all-signed`, for a ledger whose server has stopped
    // and so signed over everything, names it.
    let copy = recorded.copy();
    copy.attack(&[insert_row(n, &forged)]);
    let plain = copy.ascribe.ok(&["verify", "--json"]);
    assert_eq!(plain["ok"], true, "{plain}");
    assert_eq!(plain["tree_size"], n + 1, "{plain}");
    assert_eq!(*copy.head_sizes().last().expect("a head"), n);
    let words = format!(
        "entries seq {n}..{} follow the latest signed tree head",
        n + 1
    );
    tally.forgery(
        "well-formed row appended",
        &[verify_names(&copy, &["--all-signed"], n, &words)],
    );

    // The same row with a tree head over it, which the attacker cannot sign.
    let copy = recorded.copy();
    copy.attack(&[insert_row(n, &forged)]);
    let root_hex = copy.ascribe.ok(&["verify", "--json"])["root"]
        .as_str()
        .expect("root")
        .to_owned();
    let mut root = [0u8; 32];
    hex::decode_to_slice(&root_hex, &mut root).expect("hex root");
    let head = copy.ascribe.ok(&["ledger", "head", "--json"]);
    let origin = head["note"]
        .as_str()
        .and_then(|note| note.lines().next())
        .expect("origin")
        .to_owned();
    let note = format!(
        "{origin}\n{}\n{}\n\n\u{2014} {origin} {}\n",
        n + 1,
        BASE64.encode(root),
        BASE64.encode([7u8; 68])
    );
    copy.attack(&[(
        "INSERT INTO ledger_tree_heads (tree_size, root, signed_at, note) \
         VALUES ($1, $2, $3, $4)",
        vec![
            (n + 1).into(),
            root.to_vec().into(),
            last.time.clone().into(),
            note.into(),
        ],
    )]);
    let output = copy.run(&["verify", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    let words = format!("signed tree head filed at size {}", n + 1);
    tally.forgery(
        "row appended under a forged tree head",
        &[ensure(
            output.status.code() == Some(1)
                && report["ok"] == false
                && report["first_bad_seq"].is_null()
                && report["error"]
                    .as_str()
                    .is_some_and(|error| error.contains(&words)),
            || format!("verify: {report}"),
        )],
    );

    // An inference removed together with everything after it and every head over it: what
    // is left is a consistent, shorter ledger, so `verify` passes, but the receipt proves
    // the removal.
    for target in &targets {
        let copy = recorded.copy();
        let seq = target.seq;
        copy.attack(&[
            (
                "DELETE FROM ledger_entries WHERE seq >= $1",
                vec![seq.into()],
            ),
            (
                "DELETE FROM ledger_tree_heads WHERE tree_size > $1",
                vec![seq.into()],
            ),
        ]);
        let report = copy.ascribe.ok(&["verify", "--json"]);
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["entries"], seq, "{report}");
        tally.forgery(
            &format!("entries from {seq} on removed with their heads"),
            &[receipt_not_in_ledger(
                &copy,
                target,
                &format!("the ledger has no entry seq {seq}"),
            )],
        );
    }

    // Untouched, every receipt is proved against the latest signed head, and the proof
    // command states the receipt's leaf.
    for target in answered {
        let output = pristine.run(&[
            "receipt",
            "verify",
            &target.receipt,
            "--against-ledger",
            "--json",
        ]);
        assert_eq!(output.status.code(), Some(0));
        let report: Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["ledger"]["included"], true, "{report}");
        assert_eq!(report["ledger"]["tree_size"], n, "{report}");
        let index = target.seq.to_string();
        let proof = pristine.ascribe.ok(&[
            "ledger",
            "proof",
            "--index",
            &index,
            "--size",
            &n.to_string(),
        ]);
        let leaf = BASE64
            .decode(proof["leaf_hash"].as_str().expect("leaf"))
            .expect("base64");
        assert_eq!(hex::encode(leaf), target.leaf_hex);
    }
}

fn tamper_end_to_end(store: Store) {
    let started = Instant::now();
    let home = tempfile::tempdir().expect("tempdir");
    let inferences = if long() { 30 } else { 6 };
    let recorded = record(store, home.path(), inferences);
    let mut tally = Tally::default();
    attack_all(&recorded, &mut tally);
    eprintln!(
        "reliability: test=tamper_end_to_end store={} inferences={inferences} \
         forgeries={} forgeries_accepted={} wall_ms={}",
        store.name(),
        tally.forgeries,
        tally.accepted.len(),
        started.elapsed().as_millis()
    );
    assert_eq!(tally.accepted, Vec::<String>::new(), "forgeries accepted");
    assert!(tally.forgeries >= 9, "every attack ran");
}

#[test]
fn tampering_with_a_served_ledger_on_sqlite_is_named() {
    tamper_end_to_end(Store::Sqlite);
}

#[test]
fn tampering_with_a_served_ledger_on_postgres_is_named() {
    tamper_end_to_end(Store::Postgres);
}
