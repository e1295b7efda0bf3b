//! Crash safety on SQLite and PostgreSQL: the load binary is killed with SIGKILL at random
//! moments while appending; every entry it acknowledged survives with the same bytes, the
//! ledger verifies, and the next writer continues the same tree.

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use ascribe_store::query;
use common::{
    all_entries, all_heads, assert_acks_stored, load_verifier, on_each_backend, parse_acks,
    random_below, run_load, spawn_load, verify_with, Ack, TestDb,
};

const ROUNDS: u64 = 3;

#[test]
fn a_killed_writer_loses_no_acknowledged_entry() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let (acks, _) = run_load(&db, &["--init", "--entries", "0"]);
        assert!(acks.is_empty());
        let trusted = load_verifier(&db.key_dir());
        let mut acknowledged: Vec<Ack> = Vec::new();
        let mut length_before = 0u64;
        for round in 0..ROUNDS {
            let mut process = spawn_load(
                &db,
                &[
                    "--entries",
                    "1000000",
                    "--threads",
                    "4",
                    "--batch-max",
                    "32",
                    "--head-interval-ms",
                    "25",
                    "--print-acks",
                ],
            );
            // Appending has begun once the first ack is out; then kill at a random moment,
            // a different window in each round.
            let first = process
                .next_line(Duration::from_secs(20))
                .expect("the load binary acknowledged an entry before stdout closed");
            let delay = 40 * round + random_below(1, 40);
            std::thread::sleep(Duration::from_millis(delay));
            process.child.kill().expect("SIGKILL");
            let (status, mut lines) = process.finish();
            assert_eq!(
                status.signal(),
                Some(9),
                "killed by SIGKILL, not ended: {status}"
            );
            lines.insert(0, first);
            settle_orphaned_commit(&db);
            let acks = parse_acks(&lines);
            eprintln!(
                "{kind:?} round {round}: killed after {delay} ms, {} acks",
                acks.len()
            );
            assert!(!acks.is_empty());
            assert!(
                acks.iter().all(|ack| ack.seq >= length_before),
                "round {round} reused a seq below {length_before}"
            );
            acknowledged.extend(acks);

            let stored = all_entries(&db);
            let length = stored.len() as u64;
            assert_eq!(
                stored.last().map(|row| row.seq + 1),
                Some(length),
                "contiguous"
            );
            assert_acks_stored(&acknowledged, &stored);
            let report = verify_with(&db, &trusted);
            assert!(report.ok, "after kill {round}: {report:?}");
            assert_eq!((report.entries, report.tree_size), (length, length));
            let heads = all_heads(&db);
            assert_eq!(report.heads_checked, heads.len() as u64);
            let latest = heads.last().map_or(0, |head| head.size);
            assert!(latest <= length, "a head beyond the entries");
            eprintln!("{kind:?} round {round}: {length} entries, {latest} signed");
            length_before = length;
        }

        // A writer that runs to the end continues the same tree and signs all of it.
        let (acks, summary) = run_load(
            &db,
            &[
                "--entries",
                "40",
                "--threads",
                "2",
                "--print-acks",
                "--head-interval-ms",
                "0",
            ],
        );
        assert_eq!(summary["entries"], 40);
        let mut seqs: Vec<u64> = acks.iter().map(|ack| ack.seq).collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (length_before..length_before + 40).collect::<Vec<_>>()
        );
        acknowledged.extend(acks);
        let stored = all_entries(&db);
        let length = length_before + 40;
        assert_eq!(stored.len() as u64, length);
        assert_acks_stored(&acknowledged, &stored);
        let report = verify_with(&db, &trusted);
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, length);
        let mut backend = db.backend();
        let latest = query::latest_tree_head(backend.as_mut()).expect("readable");
        assert_eq!(
            latest.expect("a head").head.size,
            length,
            "clean shutdown signs all"
        );
    });
}

/// Waits until a transaction the killed writer left on the server has ended. PostgreSQL
/// finishes a COMMIT that reached it even after its client died, so the entries could still
/// grow between two reads; taking the ledger's write lock once waits for that transaction,
/// which holds the lock until it commits or rolls back.
fn settle_orphaned_commit(db: &TestDb) {
    db.backend()
        .write(&mut |_| Ok(()))
        .expect("the write lock is free once the killed writer's transaction ended");
}
