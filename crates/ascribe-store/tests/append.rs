//! Appending on SQLite and PostgreSQL: seqs, times, verification, proofs, group commit,
//! checked entries, and the database's refusal to change or remove rows.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use ascribe_ledger::merkle::{root_of, verify_consistency, verify_inclusion};
use ascribe_ledger::{Entry, Hash};
use ascribe_store::{
    query, AppendError, AppendedEntry, Appender, AppenderConfig, Ledger, PendingEntry, Projection,
    Rejection, StoreError, TreeHeadPolicy, Tx,
};
use common::{
    all_entries, all_heads, block_on, init_ledger, on_each_backend, poll_once, root_hex,
    try_execute, verified_head, verify, Kind, TestClock, TestDb, CLOCK_START_MICROS,
};
use serde_json::json;

fn pending(label: &str, n: u64) -> PendingEntry {
    PendingEntry::new(
        "model.registered",
        "cli:operator",
        json!({"model": label, "n": n, "text": "ü \u{2028} \"quoted\""}),
    )
}

fn appended_ok(outcomes: Vec<Result<AppendedEntry, Rejection>>) -> Vec<AppendedEntry> {
    outcomes
        .into_iter()
        .map(|outcome| outcome.expect("entry appended"))
        .collect()
}

/// Asserts that the stored rows are exactly `appended`, byte for byte.
fn assert_stored_exactly(db: &TestDb, appended: &[AppendedEntry]) {
    let stored = all_entries(db);
    assert_eq!(stored.len(), appended.len(), "number of stored rows");
    for (row, entry) in stored.iter().zip(appended) {
        let bytes = entry.entry.to_canonical_bytes().expect("canonical");
        assert_eq!(row.seq, entry.entry.seq);
        assert_eq!(
            row.entry.as_bytes(),
            bytes.as_slice(),
            "bytes of seq {}",
            row.seq
        );
        assert_eq!(
            row.leaf_hash, entry.leaf_hash,
            "leaf hash of seq {}",
            row.seq
        );
        assert_eq!(row.time, entry.entry.time.to_string());
        assert_eq!(row.kind, entry.entry.kind);
        assert_eq!(row.actor, entry.entry.actor);
        assert_eq!(ascribe_ledger::merkle::leaf_hash(&bytes), entry.leaf_hash);
    }
}

#[test]
fn batches_get_contiguous_seqs_and_verify_with_proofs() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        let mut appended = Vec::new();
        let batch_sizes = [1u64, 3, 7, 16, 5, 1];
        for (number, &size) in batch_sizes.iter().enumerate() {
            // The clock goes back 5 s before the fourth batch (times must not follow it) and
            // jumps 10 s ahead before the last.
            clock.advance_micros(match number {
                3 => -5_000_000,
                5 => 10_000_000,
                _ => 250_000,
            });
            let batch: Vec<_> = (0..size)
                .map(|n| pending(&format!("b{number}"), n))
                .collect();
            let outcomes = ledger.append_batch(&batch).expect("batch commits");
            assert_eq!(outcomes.len(), batch.len());
            appended.extend(appended_ok(outcomes));
        }
        let n = batch_sizes.iter().sum::<u64>();
        let seqs: Vec<u64> = appended.iter().map(|a| a.entry.seq).collect();
        assert_eq!(seqs, (0..n).collect::<Vec<_>>());
        let times: Vec<i64> = appended
            .iter()
            .map(|a| a.entry.time.unix_micros())
            .collect();
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
        // Batches 3 and 4 ran with the clock behind batch 2: they keep batch 2's time.
        assert_eq!(times[0], CLOCK_START_MICROS + 250_000);
        assert_eq!(times[1..4], [CLOCK_START_MICROS + 500_000; 3]);
        assert_eq!(times[4..32], [CLOCK_START_MICROS + 750_000; 28]);
        assert_eq!(times[32], CLOCK_START_MICROS + 6_000_000);
        assert_stored_exactly(&db, &appended);

        let leaves: Vec<Hash> = appended.iter().map(|a| a.leaf_hash).collect();
        let report = verify(&db);
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, n);
        assert_eq!(report.tree_size, n);
        assert_eq!(report.root, Some(root_hex(&leaves)));
        assert_eq!(report.heads_checked, batch_sizes.len() as u64);
        assert_eq!(report.first_bad_seq, None);
        assert_eq!(report.error, None);

        // One signed head per batch, at each batch's end, with the root over its prefix.
        let heads = all_heads(&db);
        let sizes: Vec<u64> = heads.iter().map(|head| head.size).collect();
        assert_eq!(sizes, [1, 4, 11, 27, 32, 33]);
        let stated: Vec<_> = heads.iter().map(verified_head).collect();
        for head in &stated {
            assert_eq!(head.root, root_of(&leaves[..head.size as usize]));
        }
        let mut backend = db.backend();
        let latest = query::latest_tree_head(backend.as_mut()).expect("readable");
        assert_eq!(latest.expect("a head").head, heads[heads.len() - 1]);

        // Inclusion of every entry in every head that covers it.
        for head in &stated {
            for index in 0..head.size {
                let proof = query::inclusion_proof(backend.as_mut(), index, head.size)
                    .expect("proof is built");
                assert_eq!(proof.leaf_hash, leaves[index as usize]);
                verify_inclusion(index, head.size, &proof.leaf_hash, &proof.proof, &head.root)
                    .unwrap_or_else(|e| panic!("inclusion of {index} in {}: {e}", head.size));
            }
        }
        // A proof does not prove another leaf.
        let proof = query::inclusion_proof(backend.as_mut(), 5, 33).expect("proof");
        let last = &stated[stated.len() - 1];
        assert!(verify_inclusion(5, 33, &leaves[6], &proof.proof, &last.root).is_err());
        // A tree larger than the ledger has no proofs, and the error says so.
        let beyond = query::inclusion_proof(backend.as_mut(), 0, 34).expect_err("beyond");
        assert_eq!(
            beyond.to_string(),
            "tree size 34 is larger than the ledger, which holds 33 entries; \
             ask for a size up to 33"
        );

        // Consistency between every pair of heads.
        for (i, old) in stated.iter().enumerate() {
            for new in &stated[i..] {
                let proof = query::consistency_proof(backend.as_mut(), old.size, new.size)
                    .expect("proof is built");
                verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
                    .unwrap_or_else(|e| panic!("consistency {}->{}: {e}", old.size, new.size));
            }
        }
        let proof = query::consistency_proof(backend.as_mut(), 4, 27).expect("proof");
        assert!(verify_consistency(4, 27, &stated[2].root, &stated[3].root, &proof).is_err());
        let root = query::root_at(backend.as_mut(), 27).expect("root");
        assert_eq!(root, stated[3].root);
    });
}

#[test]
fn a_batch_larger_than_one_insert_statement_is_written_whole() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        // The writer inserts at most 500 rows per statement: 1201 needs three.
        let batch: Vec<_> = (0..1201).map(|n| pending("bulk", n)).collect();
        let appended = appended_ok(ledger.append_batch(&batch).expect("commits"));
        let seqs: Vec<u64> = appended.iter().map(|a| a.entry.seq).collect();
        assert_eq!(seqs, (0..1201).collect::<Vec<_>>());
        assert_stored_exactly(&db, &appended);
        let leaves: Vec<Hash> = appended.iter().map(|a| a.leaf_hash).collect();
        let report = verify(&db);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.heads_checked), (1201, 1));
        assert_eq!(report.root, Some(root_hex(&leaves)));
    });
}

#[test]
fn a_reopened_writer_continues_the_same_tree() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        let batch: Vec<_> = (0..5).map(|n| pending("first", n)).collect();
        let mut appended = appended_ok(ledger.append_batch(&batch).expect("commits"));
        drop(ledger);

        // Init again is harmless with the same key, and refused with another.
        let mut backend = db.backend();
        Ledger::init(backend.as_mut(), &common::signer()).expect("same key");
        let error = Ledger::init(backend.as_mut(), &common::forger()).expect_err("other key");
        assert!(matches!(error, StoreError::Inconsistent(_)), "{error}");

        clock.set_micros(CLOCK_START_MICROS - 1_000_000);
        let mut ledger = common::open_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        let batch: Vec<_> = (0..4).map(|n| pending("second", n)).collect();
        let more = appended_ok(ledger.append_batch(&batch).expect("commits"));
        let seqs: Vec<u64> = more.iter().map(|a| a.entry.seq).collect();
        assert_eq!(seqs, [5, 6, 7, 8]);
        assert!(more.iter().all(|a| a.entry.time == appended[4].entry.time));
        appended.extend(more);
        assert_stored_exactly(&db, &appended);
        let report = verify(&db);
        let leaves: Vec<Hash> = appended.iter().map(|a| a.leaf_hash).collect();
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.heads_checked), (9, 2));
        assert_eq!(report.root, Some(root_hex(&leaves)));
    });
}

#[test]
fn opening_needs_an_initialised_ledger_with_the_same_origin() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let error = Ledger::open(
            db.backend(),
            common::signer(),
            Box::new(clock.clone()),
            TreeHeadPolicy::EveryBatch,
        )
        .err()
        .expect("no ledger yet");
        assert!(matches!(error, StoreError::NotInitialised(_)), "{error}");
        drop(init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch));
        let other = ascribe_ledger::NoteSigner::from_seed("other.origin/ledger", [7u8; 32]);
        let error = Ledger::open(
            db.backend(),
            other,
            Box::new(clock),
            TreeHeadPolicy::EveryBatch,
        )
        .err()
        .expect("other origin");
        assert!(matches!(error, StoreError::Inconsistent(_)), "{error}");
    });
}

#[test]
fn interval_policy_leaves_a_tail_unsigned_until_due() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let policy = TreeHeadPolicy::Interval(Duration::from_secs(1));
        let mut ledger = init_ledger(&db, &clock, policy);
        let sizes = |db: &TestDb| -> Vec<u64> { all_heads(db).iter().map(|h| h.size).collect() };

        ledger
            .append_batch(&[pending("a", 0), pending("a", 1)])
            .expect("commits");
        assert_eq!(sizes(&db), [2], "the first batch is signed at once");
        clock.advance_micros(400_000);
        ledger.append_batch(&[pending("b", 0)]).expect("commits");
        assert_eq!(sizes(&db), [2], "0.4 s after the last head: not due");
        assert!(ledger.has_unsigned_entries());
        let report = verify(&db);
        assert!(report.ok, "an unsigned tail verifies: {report:?}");
        assert_eq!((report.entries, report.heads_checked), (3, 1));

        clock.advance_micros(600_000);
        ledger.append_batch(&[pending("c", 0)]).expect("commits");
        assert_eq!(sizes(&db), [2, 4], "1 s after the last head: due");
        assert!(!ledger.has_unsigned_entries());
        assert_eq!(
            ledger.sign_tree_head().expect("writes"),
            None,
            "nothing new to sign"
        );

        ledger.append_batch(&[pending("d", 0)]).expect("commits");
        let signed = ledger
            .sign_tree_head()
            .expect("writes")
            .expect("a new head");
        assert_eq!(signed.head.size, 5);
        assert_eq!(sizes(&db), [2, 4, 5]);
        let report = verify(&db);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.heads_checked), (5, 3));
    });
}

#[test]
fn a_ledger_whose_first_append_is_refused_still_verifies() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        let refused =
            PendingEntry::checked("alias.rotated", "gateway", |_| Err(refuse("no alias")));
        let outcomes = ledger.append_batch(&[refused]).expect("commits");
        assert!(matches!(&outcomes[..], [Err(Rejection::Refused(r))] if r == "no alias"));
        let report = verify(&db);
        assert!(report.ok, "empty ledger after a refusal: {report:?}");
        assert_eq!(report.entries, 0);

        ledger.append_batch(&[pending("a", 0)]).expect("commits");
        let report = verify(&db);
        assert!(report.ok, "one entry after a refusal: {report:?}");
        assert_eq!(report.entries, 1);
        // Explicitly signing an empty ledger must not break it either.
        let db = TestDb::new(kind);
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        ledger.sign_tree_head().expect("writes");
        assert!(verify(&db).ok, "{:?}", verify(&db));
        ledger.append_batch(&[pending("a", 0)]).expect("commits");
        assert!(verify(&db).ok, "{:?}", verify(&db));
    });
}

fn refuse(reason: &str) -> Rejection {
    Rejection::Refused(reason.to_owned())
}

/// Records, for each entry, how many entries were committed before its transaction began:
/// entries of one batch are inserted together at its end, so they all see the same count,
/// the `seq` their batch starts at.
struct BatchProbe(Arc<Mutex<BTreeMap<u64, u64>>>);

impl Projection for BatchProbe {
    fn project(&self, tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
        let row = tx.query_row("SELECT COUNT(*) FROM ledger_entries", &[])?;
        let committed = row.expect("one row")[0].count("count")?;
        self.0.lock().expect("lock").insert(entry.seq, committed);
        Ok(())
    }
}

#[test]
fn group_commit_from_eight_threads_keeps_every_acknowledged_entry() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 200;
    const MAX_BATCH: u64 = 64;
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        // Heads only when the first batch commits and when the appender shuts down.
        let policy = TreeHeadPolicy::Interval(Duration::from_secs(3600));
        let mut ledger = init_ledger(&db, &clock, policy);
        let batch_starts = Arc::new(Mutex::new(BTreeMap::new()));
        ledger.add_projection(Box::new(BatchProbe(Arc::clone(&batch_starts))));
        let config = AppenderConfig {
            max_batch: MAX_BATCH as usize,
            idle_head_interval: None,
            ..AppenderConfig::default()
        };
        let appender = Arc::new(Appender::start(ledger, config));
        let workers: Vec<_> = (0..THREADS)
            .map(|thread_index| {
                let appender = Arc::clone(&appender);
                let clock = clock.clone();
                thread::spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            clock.advance_micros(1);
                            let body = json!({"thread": thread_index, "i": i});
                            let entry = PendingEntry::new("inference.recorded", "gateway", body);
                            let acked = appender.append_blocking(entry).expect("acknowledged");
                            (thread_index, i, acked)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acks: Vec<(u64, u64, AppendedEntry)> = workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("appending thread"))
            .collect();
        let appender = Arc::into_inner(appender).expect("no other handle");
        let ledger = appender
            .shutdown()
            .expect("writer thread returns the ledger");
        assert!(!ledger.has_unsigned_entries(), "shutdown signs the tail");

        let total = THREADS * PER_THREAD;
        acks.sort_by_key(|(_, _, acked)| acked.entry.seq);
        let seqs: Vec<u64> = acks.iter().map(|(_, _, acked)| acked.entry.seq).collect();
        assert_eq!(
            seqs,
            (0..total).collect::<Vec<_>>(),
            "unique and contiguous"
        );
        for (thread_index, i, acked) in &acks {
            assert_eq!(acked.entry.body, json!({"thread": thread_index, "i": i}));
        }
        let distinct: BTreeSet<_> = acks.iter().map(|(t, i, _)| (*t, *i)).collect();
        assert_eq!(distinct.len() as u64, total);
        let appended: Vec<AppendedEntry> = acks.into_iter().map(|(_, _, acked)| acked).collect();
        assert_stored_exactly(&db, &appended);

        // The batches: runs of entries that saw the same committed count, each starting at
        // that count, at most MAX_BATCH long, and fewer commits than entries.
        let batch_starts = batch_starts.lock().expect("lock").clone();
        assert_eq!(batch_starts.keys().copied().collect::<Vec<_>>(), seqs);
        let mut batches: BTreeMap<u64, u64> = BTreeMap::new();
        for start in batch_starts.values() {
            *batches.entry(*start).or_default() += 1;
        }
        let mut next = 0;
        for (&start, &size) in &batches {
            assert_eq!(start, next, "batch starts where the previous one ended");
            assert!(
                (1..=MAX_BATCH).contains(&size),
                "batch of {size} at {start}"
            );
            next += size;
        }
        assert_eq!(next, total);
        let largest = batches.values().max().copied().unwrap_or(0);
        eprintln!(
            "{kind:?}: {} commits for {total} entries, largest {largest}",
            batches.len()
        );
        assert!(
            batches.len() < total as usize,
            "no two entries shared a commit"
        );
        assert!(largest >= 2);

        let first_batch = batches.get(&0).copied().expect("a first batch");
        let sizes: Vec<u64> = all_heads(&db).iter().map(|head| head.size).collect();
        assert_eq!(sizes, [first_batch, total]);
        let leaves: Vec<Hash> = appended.iter().map(|a| a.leaf_hash).collect();
        let report = verify(&db);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.tree_size), (total, total));
        assert_eq!(report.heads_checked, 2);
        assert_eq!(report.root, Some(root_hex(&leaves)));
    });
}

/// Holds the appender's writer inside a first batch (the check of a `gate.opened` entry waits),
/// so that what is appended next queues up into one batch. Returns the gate's append, still
/// pending, and the sender that lets the writer go on.
fn hold_the_writer(
    appender: &Appender,
) -> (
    Pin<Box<impl Future<Output = Result<AppendedEntry, AppendError>> + '_>>,
    mpsc::Sender<()>,
) {
    let (entered_sender, entered) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let gate = PendingEntry::checked("gate.opened", "test", move |_| {
        entered_sender.send(()).expect("test waits");
        released
            .lock()
            .expect("lock")
            .recv()
            .expect("test releases");
        Ok(json!({}))
    });
    let gate = poll_once(appender.append(gate));
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("writer runs the gate's check");
    (gate, release)
}

#[test]
fn refused_checked_entries_are_not_written_and_spare_their_batch() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        let first = appended_ok(ledger.append_batch(&[pending("before", 0)]).expect("ok"));

        // Directly: one batch, refusals in the middle and at the end.
        let counted = |label: &'static str| {
            PendingEntry::checked("alias.rotated", "gateway", move |tx| {
                let row = tx.query_row("SELECT COUNT(*) FROM ledger_entries", &[])?;
                let count = row.expect("a row")[0].integer("count")?;
                Ok(json!({"label": label, "entries_before_batch": count}))
            })
        };
        let batch = [
            pending("x", 1),
            PendingEntry::checked("alias.rotated", "gateway", |_| Err(refuse("no such alias"))),
            counted("checked"),
            PendingEntry::checked("alias.rotated", "gateway", |_| Err(refuse("second"))),
            pending("y", 2),
            PendingEntry::new("Bad Kind", "gateway", json!({})),
            PendingEntry::checked("alias.rotated", "gateway", |_| Err(refuse("last"))),
        ];
        let outcomes = ledger.append_batch(&batch).expect("batch commits");
        assert_eq!(outcomes.len(), 7);
        let seq_of = |index: usize| match &outcomes[index] {
            Ok(appended) => appended.entry.seq,
            Err(error) => panic!("entry {index} refused: {error}"),
        };
        let reason_of = |index: usize| match &outcomes[index] {
            Err(Rejection::Refused(reason)) => reason.clone(),
            other => panic!("entry {index} was not refused: {other:?}"),
        };
        assert_eq!([seq_of(0), seq_of(2), seq_of(4)], [1, 2, 3]);
        assert_eq!(reason_of(1), "no such alias");
        assert_eq!(reason_of(3), "second");
        assert!(reason_of(5).contains("`Bad Kind` is not dotted lowercase"));
        assert_eq!(reason_of(6), "last");
        let checked_body = outcomes[2].as_ref().expect("appended").entry.body.clone();
        assert_eq!(
            checked_body,
            json!({"label": "checked", "entries_before_batch": 1})
        );
        let mut appended = first;
        appended.extend(outcomes.into_iter().filter_map(Result::ok));
        assert_stored_exactly(&db, &appended);
        let sizes: Vec<u64> = all_heads(&db).iter().map(|head| head.size).collect();
        assert_eq!(sizes, [1, 4], "the three kept entries were one commit");

        // Through the appender: hold the writer in a first batch while the next one queues.
        let appender = Appender::start(ledger, AppenderConfig::default());
        let (gate, release) = hold_the_writer(&appender);
        let queued = vec![
            poll_once(appender.append(pending("z", 3))),
            poll_once(
                appender.append(PendingEntry::checked("alias.rotated", "gateway", |_| {
                    Err(refuse("alias `prod` does not exist"))
                })),
            ),
            poll_once(appender.append(pending("z", 4))),
            poll_once(
                appender.append(PendingEntry::checked("alias.rotated", "gateway", |_| {
                    Err(Rejection::Store(StoreError::Inconsistent(
                        "projection broken".into(),
                    )))
                })),
            ),
            poll_once(appender.append(pending("z", 5))),
        ];
        release.send(()).expect("gate waits");
        let gate = block_on(gate).expect("gate appended");
        assert_eq!(gate.entry.seq, 4);
        let results: Vec<Result<AppendedEntry, AppendError>> =
            queued.into_iter().map(block_on).collect();
        let ledger = appender.shutdown().expect("ledger back");
        drop(ledger);
        // The store error failed the whole batch, which was then retried request by request
        // (here one entry each): only the entry whose check failed is lost, refused ones are
        // refused again.
        let seqs: Vec<Option<u64>> = results
            .iter()
            .map(|r| r.as_ref().ok().map(|a| a.entry.seq))
            .collect();
        assert_eq!(seqs, [Some(5), None, Some(6), None, Some(7)]);
        match &results[1] {
            Err(AppendError::Refused(reason)) => assert_eq!(reason, "alias `prod` does not exist"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        match &results[3] {
            Err(AppendError::Store(reason)) => assert!(reason.contains("projection broken")),
            other => panic!("expected a store error, got {other:?}"),
        }
        appended.push(gate);
        appended.extend(results.into_iter().filter_map(Result::ok));
        assert_stored_exactly(&db, &appended);
        let report = verify(&db);
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, 8);
    });
}

#[test]
fn the_database_refuses_update_delete_and_truncate() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        let batch: Vec<_> = (0..3).map(|n| pending("guarded", n)).collect();
        let appended = appended_ok(ledger.append_batch(&batch).expect("commits"));
        let heads_before = all_heads(&db);

        let mut statements = vec![
            "UPDATE ledger_entries SET entry = 'x' WHERE seq = 1",
            "UPDATE ledger_entries SET kind = 'model.forged'",
            "DELETE FROM ledger_entries WHERE seq = 2",
            "DELETE FROM ledger_entries",
            "UPDATE ledger_tree_heads SET note = 'x'",
            "DELETE FROM ledger_tree_heads WHERE tree_size = 3",
            "DELETE FROM ledger_tree_heads",
            "UPDATE ledger_meta SET value = 'x' WHERE name = 'public_key'",
            "DELETE FROM ledger_meta",
        ];
        if kind == Kind::Postgres {
            statements.extend([
                "TRUNCATE ledger_entries",
                "TRUNCATE ledger_tree_heads",
                "TRUNCATE ledger_meta",
            ]);
        }
        for sql in statements {
            let table = sql
                .split_whitespace()
                .find(|word| word.starts_with("ledger_"))
                .expect("names a table");
            let verb = sql.split_whitespace().next().expect("a verb");
            match try_execute(&db, sql) {
                Ok(changed) => panic!("`{sql}` was allowed and changed {changed} rows"),
                Err(error) => {
                    let message = error.to_string();
                    let expected = format!("{table} is append-only: {verb} refused");
                    assert!(message.contains(&expected), "`{sql}`: {message}");
                }
            }
        }
        assert_stored_exactly(&db, &appended);
        assert_eq!(all_heads(&db), heads_before);
        let report = verify(&db);
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, 3);
    });
}

/// A projection whose table is broken for entries of kind `broken.entry`.
struct BrokenProjection;

impl Projection for BrokenProjection {
    fn project(&self, _: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
        match entry.kind.as_str() {
            "broken.entry" => Err(StoreError::Inconsistent("no such table".into())),
            _ => Ok(()),
        }
    }
}

/// An inference and its observations are handed to the writer together: when one of them
/// cannot be written, none is, even after the failed batch is retried request by request,
/// while another caller's entry in the same batch stands.
#[test]
fn entries_handed_over_together_are_written_together_or_not_at_all() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        ledger.add_projection(Box::new(BrokenProjection));
        let config = AppenderConfig {
            idle_head_interval: None,
            ..AppenderConfig::default()
        };
        let appender = Appender::start(ledger, config);
        let together = || {
            vec![
                PendingEntry::new("inference.kept", "test", json!({})),
                PendingEntry::new("broken.entry", "test", json!({})),
            ]
        };

        let (gate, release) = hold_the_writer(&appender);
        let pair = poll_once(appender.append_all(together()));
        let other = poll_once(appender.append(PendingEntry::new("other.entry", "test", json!({}))));
        release.send(()).expect("gate waits");
        assert!(block_on(gate).is_ok());
        let pair = block_on(pair);
        assert!(
            pair.iter()
                .all(|outcome| matches!(outcome, Err(AppendError::Store(_)))),
            "the kept entry fell with its broken companion: {pair:?}"
        );
        assert!(block_on(other).is_ok(), "another caller's entry stands");

        // Alone in its batch, the pair fails together too.
        let pair = block_on(appender.append_all(together()));
        assert_eq!(pair.len(), 2);
        assert!(pair.iter().all(Result::is_err), "{pair:?}");

        drop(appender.shutdown().expect("ledger back"));
        let kinds: Vec<String> = all_entries(&db)
            .into_iter()
            .map(|stored| stored.kind)
            .collect();
        assert_eq!(kinds, ["gate.opened", "other.entry"]);
    });
}
