//! Ledger throughput on this machine, next to the physical limits it is bound by. Prints
//! figures; asserts nothing about speed.
//!
//! Run with `cargo bench -p ascribe-store --features testing --bench ledger`.
//! `ASCRIBE_BENCH_ENTRIES` (default 100000) sets the size of the ledger verified and proven;
//! PostgreSQL is the server of `ASCRIBE_TEST_POSTGRES` (default: local), in a fresh schema.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ascribe_ledger::merkle::verify_inclusion;
use ascribe_ledger::NoteSigner;
use ascribe_store::testing::fresh_postgres_schema;
use ascribe_store::{
    open_backend, query, verify_ledger, Appender, AppenderConfig, DatabaseLocation, Ledger,
    PendingEntry, SystemClock, TreeHeadPolicy,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn main() {
    let entries: u64 = std::env::var("ASCRIBE_BENCH_ENTRIES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    let directory = tempfile::tempdir().expect("tempdir");

    println!("physical limits");
    println!(
        "  fsync (4 KiB write + fdatasync), median: {:.3} ms",
        ascribe_store::testing::fsync_median_ms(directory.path())
    );
    println!(
        "  SHA-256, one core, 1 MiB blocks: {:.2} GB/s",
        sha256_gb_per_s()
    );

    let sqlite = format!("sqlite://{}", directory.path().join("bench.db").display());
    for (store, url) in [("sqlite", sqlite), ("postgres", fresh_postgres_schema())] {
        println!("{store}");
        let mut ledger = open(&url);
        for batch_size in [1usize, 16, 128, 1024] {
            let n_entries = if batch_size == 1 { 500 } else { 20_000 };
            let begun = Instant::now();
            let mut appended = 0;
            while appended < n_entries {
                let batch: Vec<PendingEntry> =
                    (0..batch_size).map(|i| entry(appended + i)).collect();
                let outcomes = ledger.append_batch(&batch).expect("commits");
                assert!(outcomes.iter().all(Result::is_ok));
                appended += batch_size;
            }
            let seconds = begun.elapsed().as_secs_f64();
            println!(
                "  append, batches of {batch_size:>4}: {:>9.0} entries/s ({:.3} ms per commit)",
                appended as f64 / seconds,
                seconds * 1e3 / (appended / batch_size) as f64
            );
        }
        let ledger = group_commit(ledger, 64, 20_000);
        let mut ledger = fill(ledger, entries);
        ledger.sign_tree_head().expect("signs");

        let verifier = NoteSigner::from_seed("ascribe.bench/ledger", [2; 32]).verifier();
        let backend = ledger.backend();
        let begun = Instant::now();
        let report = verify_ledger(backend, &verifier, &mut |_, _| {}).expect("reads");
        let seconds = begun.elapsed().as_secs_f64();
        assert!(report.ok, "{report:?}");
        println!(
            "  verify {} entries: {:.0} entries/s",
            report.entries,
            report.entries as f64 / seconds
        );

        let size = report.tree_size;
        let head = query::latest_tree_head(backend)
            .expect("reads")
            .expect("a head");
        let root = verifier
            .verify_note(&head.head.note)
            .expect("valid head")
            .root;
        let n_proofs = 20u64;
        let begun = Instant::now();
        for proof_number in 0..n_proofs {
            let index = (proof_number * 7_919) % size;
            let proof = query::inclusion_proof(backend, index, size).expect("proves");
            verify_inclusion(index, size, &proof.leaf_hash, &proof.proof, &root).expect("verifies");
        }
        let seconds = begun.elapsed().as_secs_f64();
        println!(
            "  inclusion proofs at size {size}: {:.1} proofs/s ({:.1} ms each)",
            n_proofs as f64 / seconds,
            seconds * 1e3 / n_proofs as f64
        );
    }
}

fn open(url: &str) -> Ledger {
    let location: DatabaseLocation = url.parse().expect("location");
    let signer = NoteSigner::from_seed("ascribe.bench/ledger", [2; 32]);
    let mut backend = open_backend(&location, true).expect("opens");
    Ledger::init(backend.as_mut(), &signer).expect("init");
    let policy = TreeHeadPolicy::Interval(Duration::from_secs(1));
    Ledger::open(backend, signer, Box::new(SystemClock), policy).expect("opens")
}

/// An entry the size of a typical inference record.
fn entry(index: usize) -> PendingEntry {
    let body = json!({
        "inference_id": format!("inf_{index:016x}"),
        "alias": "v1",
        "deployment": "aug-east",
        "checkpoint": "openai:gpt-4o-2024-08-06",
        "served": {"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_898ac29719"},
        "request_sha256": format!("{:064x}", index),
        "response_sha256": format!("{:064x}", index + 1),
        "status": 200,
    });
    PendingEntry::new("inference.recorded", "gateway", body)
}

/// Appends through the group-commit writer from `threads` threads at once.
fn group_commit(ledger: Ledger, threads: usize, n_entries: usize) -> Ledger {
    let appender = Arc::new(Appender::start(ledger, AppenderConfig::default()));
    let begun = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let appender = Arc::clone(&appender);
            std::thread::spawn(move || {
                for index in (thread..n_entries).step_by(threads) {
                    appender.append_blocking(entry(index)).expect("appends");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("joins");
    }
    let seconds = begun.elapsed().as_secs_f64();
    println!(
        "  append, group commit from {threads} threads: {:.0} entries/s",
        n_entries as f64 / seconds
    );
    Arc::into_inner(appender)
        .expect("sole owner")
        .shutdown()
        .expect("ledger")
}

/// Grows the ledger to at least `target` entries with large batches.
fn fill(mut ledger: Ledger, target: u64) -> Ledger {
    let size = query::entry_count(ledger.backend()).expect("counts");
    let mut next = size;
    while next < target {
        let batch: Vec<PendingEntry> = (next..target.min(next + 2048))
            .map(|index| entry(index as usize))
            .collect();
        ledger.append_batch(&batch).expect("commits");
        next += batch.len() as u64;
    }
    ledger
}

fn sha256_gb_per_s() -> f64 {
    let block = vec![1u8; 1 << 20];
    let rounds = 512;
    let begun = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..rounds {
        hasher.update(&block);
    }
    std::hint::black_box(hasher.finalize());
    (rounds as f64 * block.len() as f64) / begun.elapsed().as_secs_f64() / 1e9
}
