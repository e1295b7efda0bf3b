//! Two writers on one ledger, as two gateway processes would be: two `Ledger`s on separate
//! connections (PostgreSQL, and SQLite for comparison), and two real OS processes running
//! the load binary; either way the result is one contiguous tree that verifies.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread;

use ascribe_ledger::merkle::{root_of, verify_consistency};
use ascribe_ledger::{Hash, TreeHead};
use ascribe_store::{query, AppendedEntry, Appender, AppenderConfig, PendingEntry, TreeHeadPolicy};
use common::{
    all_entries, all_heads, assert_acks_stored, init_ledger, load_verifier, on_backends,
    on_each_backend, open_ledger, root_hex, run_load, spawn_load, verify, verify_with, Ack, Kind,
    TestClock, TestDb, CLOCK_START_MICROS,
};
use serde_json::json;

const WRITERS: u64 = 2;
const THREADS: u64 = 4;
const PER_THREAD: u64 = 60;

/// Checks every stored head's root against the root over the first leaves, and proves
/// consistency between a sample of heads and to the latest one; returns the number of
/// heads. Signatures are `verify_ledger`'s job (its `heads_checked` counts them).
fn assert_heads_consistent(db: &TestDb, leaves: &[Hash]) -> usize {
    let heads: Vec<TreeHead> = all_heads(db)
        .iter()
        .map(|stored| {
            let body = &stored.note[..stored.note.find("\n\n").expect("a note") + 1];
            let head = TreeHead::parse_body(body).expect("a tree head body");
            assert_eq!(head.size, stored.size);
            assert_eq!(
                head.root,
                root_of(&leaves[..head.size as usize]),
                "{}",
                head.size
            );
            head
        })
        .collect();
    assert_eq!(
        heads.last().map(|head| head.size),
        Some(leaves.len() as u64)
    );
    let mut backend = db.backend();
    let step = (heads.len() / 12).max(1);
    let latest = &heads[heads.len() - 1];
    for index in (0..heads.len() - 1).step_by(step) {
        for (old, new) in [(&heads[index], &heads[index + 1]), (&heads[index], latest)] {
            let proof = query::consistency_proof(backend.as_mut(), old.size, new.size)
                .expect("consistency proof");
            verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
                .unwrap_or_else(|e| panic!("{} -> {}: {e}", old.size, new.size));
        }
    }
    heads.len()
}

#[test]
fn two_ledgers_on_separate_connections_build_one_tree() {
    on_backends(&[Kind::Postgres, Kind::Sqlite], |kind| {
        let db = TestDb::new(kind);
        let clocks = [TestClock::new(), TestClock::new()];
        // The second writer's clock runs a minute behind: times must still never decrease.
        clocks[1].advance_micros(-60_000_000);
        drop(init_ledger(&db, &clocks[0], TreeHeadPolicy::EveryBatch));
        let appenders: Vec<Arc<Appender>> = clocks
            .iter()
            .map(|clock| {
                let ledger = open_ledger(&db, clock, TreeHeadPolicy::EveryBatch);
                let config = AppenderConfig {
                    max_batch: 32,
                    idle_head_interval: None,
                    ..AppenderConfig::default()
                };
                Arc::new(Appender::start(ledger, config))
            })
            .collect();
        let workers: Vec<_> = (0..WRITERS)
            .flat_map(|writer| (0..THREADS).map(move |index| (writer, index)))
            .map(|(writer, thread_index)| {
                let appender = Arc::clone(&appenders[writer as usize]);
                let clock = clocks[writer as usize].clone();
                thread::spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            clock.advance_micros(7);
                            let body = json!({"writer": writer, "thread": thread_index, "i": i});
                            let entry = PendingEntry::new("inference.recorded", "gateway", body);
                            let acked = appender.append_blocking(entry).expect("acknowledged");
                            (writer, acked)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acks: Vec<(u64, AppendedEntry)> = workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("appending thread"))
            .collect();
        for appender in appenders {
            let appender = Arc::into_inner(appender).expect("sole handle");
            assert!(appender.shutdown().is_some(), "writer thread ended cleanly");
        }
        let total = WRITERS * THREADS * PER_THREAD;
        acks.sort_by_key(|(_, acked)| acked.entry.seq);
        let seqs: Vec<u64> = acks.iter().map(|(_, acked)| acked.entry.seq).collect();
        assert_eq!(seqs, (0..total).collect::<Vec<_>>(), "no gap, no duplicate");
        let bodies: BTreeSet<String> = acks
            .iter()
            .map(|(_, acked)| acked.entry.body.to_string())
            .collect();
        assert_eq!(bodies.len() as u64, total, "every request appended once");
        let times: Vec<i64> = acks
            .iter()
            .map(|(_, a)| a.entry.time.unix_micros())
            .collect();
        assert!(
            times.windows(2).all(|pair| pair[0] <= pair[1]),
            "times go back"
        );
        let switches = acks
            .windows(2)
            .filter(|pair| pair[0].0 != pair[1].0)
            .count();
        eprintln!("{kind:?}: the writer changed {switches} times along seq");
        if kind == Kind::Postgres {
            assert!(switches >= 2, "the two writers never interleaved");
        }

        let stored = all_entries(&db);
        assert_eq!(stored.len() as u64, total);
        for (row, (_, acked)) in stored.iter().zip(&acks) {
            let bytes = acked.entry.to_canonical_bytes().expect("canonical");
            assert_eq!(row.entry.as_bytes(), bytes.as_slice(), "seq {}", row.seq);
            assert_eq!(row.leaf_hash, acked.leaf_hash);
        }
        let leaves: Vec<Hash> = acks.iter().map(|(_, acked)| acked.leaf_hash).collect();
        let n_heads = assert_heads_consistent(&db, &leaves);
        // Both writers signed heads: the second one's clock shows in `signed_at`.
        let mut backend = db.backend();
        let signed_at: Vec<String> = query::tree_heads(backend.as_mut())
            .expect("readable")
            .into_iter()
            .map(|record| record.signed_at)
            .collect();
        let start = ascribe_ledger::Timestamp::from_unix_micros(CLOCK_START_MICROS).to_string();
        let by_second = signed_at.iter().filter(|time| **time < start).count();
        assert!(by_second > 0, "the second writer signed no head");
        assert!(
            by_second < signed_at.len(),
            "the first writer signed no head"
        );
        let report = verify(&db);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.tree_size), (total, total));
        assert_eq!(report.heads_checked, n_heads as u64);
        assert_eq!(report.root, Some(root_hex(&leaves)));
    });
}

#[test]
fn two_load_processes_append_to_one_ledger() {
    const PER_PROCESS: u64 = 300;
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let (acks, summary) = run_load(&db, &["--init", "--entries", "0"]);
        assert!(acks.is_empty());
        assert_eq!(summary["entries"], 0);
        let per_process = PER_PROCESS.to_string();
        let arguments = [
            "--entries",
            per_process.as_str(),
            "--threads",
            "4",
            "--batch-max",
            "16",
            "--head-interval-ms",
            "20",
            "--print-acks",
        ];
        let processes = [spawn_load(&db, &arguments), spawn_load(&db, &arguments)];
        let mut all: Vec<(usize, Ack)> = Vec::new();
        for (number, process) in processes.into_iter().enumerate() {
            let (status, lines) = process.finish();
            assert!(status.success(), "process {number} failed: {status}");
            let summary = lines.last().expect("a summary line");
            let summary: serde_json::Value = serde_json::from_str(summary).expect("JSON");
            assert_eq!(summary["entries"], PER_PROCESS);
            assert!(summary["entries_per_second"].as_f64().expect("rate") > 0.0);
            let acks = common::parse_acks(&lines);
            assert_eq!(acks.len() as u64, PER_PROCESS);
            all.extend(acks.into_iter().map(|ack| (number, ack)));
        }
        all.sort_by_key(|(_, ack)| ack.seq);
        let total = 2 * PER_PROCESS;
        let seqs: Vec<u64> = all.iter().map(|(_, ack)| ack.seq).collect();
        assert_eq!(seqs, (0..total).collect::<Vec<_>>(), "no gap, no duplicate");
        let switches = all.windows(2).filter(|pair| pair[0].0 != pair[1].0).count();
        eprintln!("{kind:?}: the process changed {switches} times along seq");

        let stored = all_entries(&db);
        assert_eq!(stored.len() as u64, total);
        let acks: Vec<Ack> = all.into_iter().map(|(_, ack)| ack).collect();
        assert_acks_stored(&acks, &stored);
        let trusted = load_verifier(&db.key_dir());
        let leaves: Vec<Hash> = stored.iter().map(|row| row.leaf_hash).collect();
        let n_heads = assert_heads_consistent(&db, &leaves);
        let report = verify_with(&db, &trusted);
        assert!(report.ok, "{report:?}");
        assert_eq!(
            (report.entries, report.heads_checked),
            (total, n_heads as u64)
        );
        assert_eq!(report.root, Some(root_hex(&leaves)));
    });
}
