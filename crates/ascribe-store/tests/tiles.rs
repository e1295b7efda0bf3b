//! Proofs built from stored subtree tiles equal proofs built from every leaf, on both stores,
//! across tile boundaries, a reopened writer, and a second level of tiles.

mod common;

use ascribe_ledger::merkle::{self, SubtreeSource};
use ascribe_ledger::Hash;
use ascribe_store::{query, PendingEntry, TreeHeadPolicy};
use common::{all_entries, init_ledger, on_each_backend, open_ledger, TestClock, TestDb};
use serde_json::json;

const N_ENTRIES: u64 = 66_000;

fn append(ledger: &mut ascribe_store::Ledger, from: u64, to: u64, batch_size: u64) {
    let mut next = from;
    while next < to {
        let end = to.min(next + batch_size);
        let batch: Vec<PendingEntry> = (next..end)
            .map(|n| PendingEntry::new("test.appended", "tester", json!({"n": n})))
            .collect();
        let outcomes = ledger.append_batch(&batch).expect("commits");
        assert!(outcomes.iter().all(Result::is_ok));
        next = end;
    }
}

fn count_tiles(db: &TestDb, level: i64) -> u64 {
    let mut backend = db.backend();
    query::read(backend.as_mut(), |tx| {
        let sql = "SELECT idx FROM ledger_subtrees WHERE level = $1";
        Ok(tx.query(sql, &[level.into()])?.len() as u64)
    })
    .expect("reads")
}

#[test]
fn proofs_from_tiles_equal_proofs_from_leaves() {
    on_each_backend(|kind| {
        let db = TestDb::new(kind);
        let clock = TestClock::new();
        let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::Interval(Default::default()));
        // Odd batch sizes so that tiles complete in the middle of batches.
        append(&mut ledger, 0, 1_000, 7);
        append(&mut ledger, 1_000, 40_000, 3_001);
        drop(ledger);
        // A new writer rebuilds its incomplete tiles from the stored rows.
        let mut ledger = open_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
        append(&mut ledger, 40_000, N_ENTRIES, 2_048);

        assert_eq!(count_tiles(&db, 8), N_ENTRIES / 256, "{kind:?}");
        assert_eq!(count_tiles(&db, 16), 1, "{kind:?}");

        let leaves: Vec<Hash> = all_entries(&db).iter().map(|row| row.leaf_hash).collect();
        assert_eq!(leaves.len() as u64, N_ENTRIES);
        let mut all_leaves: &[Hash] = &leaves;
        let mut backend = db.backend();
        let pairs = [
            (0, 1),
            (255, 256),
            (256, 257),
            (300, 1_000),
            (65_535, 65_536),
            (65_536, 65_537),
            (12_345, 65_536),
            (777, N_ENTRIES),
            (N_ENTRIES - 1, N_ENTRIES),
            (40_000, 65_999),
        ];
        for (index, size) in pairs {
            let stored = query::inclusion_proof(backend.as_mut(), index, size).expect("proves");
            let expected =
                merkle::inclusion_proof(index, size, &mut all_leaves).expect("from leaves");
            assert_eq!(
                stored.proof, expected,
                "{kind:?} inclusion {index} in {size}"
            );
            let root = all_leaves.subtree_root(0, size).expect("root");
            assert_eq!(query::root_at(backend.as_mut(), size).expect("root"), root);
            assert_eq!(stored.leaf_hash, leaves[index as usize]);

            let stored =
                query::consistency_proof(backend.as_mut(), index + 1, size).expect("proves");
            let expected =
                merkle::consistency_proof(index + 1, size, &mut all_leaves).expect("from leaves");
            assert_eq!(
                stored,
                expected,
                "{kind:?} consistency {} to {size}",
                index + 1
            );
        }
    });
}
