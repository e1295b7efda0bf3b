//! As-of resolution at scale: builds a ledger with many rotations of one alias and times
//! `resolve_at` and `timeline` against it. Prints figures; asserts nothing about speed.
//!
//! `ASCRIBE_BENCH_ROTATIONS` (default 1000000) sets the number of rotations;
//! `ASCRIBE_BENCH_DB` a `postgres://` URL to run on PostgreSQL instead of a temporary SQLite
//! file. Run with `cargo bench -p ascribe-registry --bench as_of`.

use std::time::Instant;

use ascribe_ledger::{NoteSigner, Timestamp};
use ascribe_registry::changes::{
    create_alias, register_checkpoint, register_deployment, rotate_alias, NewAlias, NewCheckpoint,
    NewDeployment, NewRotation,
};
use ascribe_registry::{queries, Dialect, MismatchPolicy, Retention, RotationKind};
use ascribe_store::testing::ManualClock;
use ascribe_store::{open_backend, DatabaseLocation, Ledger, PendingEntry, TreeHeadPolicy};

const SECOND: i64 = 1_000_000;

fn main() {
    let rotations: u64 = std::env::var("ASCRIBE_BENCH_ROTATIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let directory = tempfile::tempdir().expect("tempdir");
    let url = std::env::var("ASCRIBE_BENCH_DB")
        .unwrap_or_else(|_| format!("sqlite://{}", directory.path().join("bench.db").display()));
    let location: DatabaseLocation = url.parse().expect("database location");
    let store = if matches!(location, DatabaseLocation::Sqlite(_)) {
        "sqlite"
    } else {
        "postgres"
    };

    let signer = NoteSigner::from_seed("ascribe.bench/as-of", [9; 32]);
    let mut backend = open_backend(&location, true).expect("opens");
    ascribe_store::Ledger::init(backend.as_mut(), &signer).expect("init");
    ascribe_registry::create_tables(backend.as_mut()).expect("tables");
    let start = Timestamp::parse("2026-01-01T00:00:00.000000Z").expect("time");
    let clock = ManualClock::stepping(start, SECOND);
    let policy = TreeHeadPolicy::Interval(std::time::Duration::from_secs(3600));
    let mut ledger = Ledger::open(backend, signer, Box::new(clock.clone()), policy).expect("opens");
    ledger.add_projection(Box::new(ascribe_registry::RegistryProjection));

    let built = Instant::now();
    setup(&mut ledger);
    let batch_size = 1000;
    let mut written = 0;
    while written < rotations {
        let batch: Vec<PendingEntry> = (written..rotations.min(written + batch_size))
            .map(|index| {
                let rotation = NewRotation {
                    alias: "v1".into(),
                    to: Some(format!("pool-{}", (index + 1) % 2)),
                    kind: RotationKind::Capacity,
                    reason: format!("rotation {index}"),
                    evidence: None,
                };
                rotate_alias(rotation, "bench")
            })
            .collect();
        let outcomes = ledger.append_batch(&batch).expect("batch commits");
        if let Some(Err(refusal)) = outcomes.iter().find(|outcome| outcome.is_err()) {
            panic!("a rotation was refused: {refusal}");
        }
        written += batch.len() as u64;
    }
    let build_seconds = built.elapsed().as_secs_f64();
    ledger.sign_tree_head().expect("signs");
    let backend = ledger.backend();

    // Rotation i is entry seq 4 + i (after a checkpoint, two deployments and the alias); read
    // its recorded start time, then resolve at that exact instant (the half-open edge) and
    // half a second later.
    let n_queries = 10_000u64;
    let mut resolve_times = Vec::with_capacity(2 * n_queries as usize);
    for query in 0..n_queries {
        let rotation = (query * 7_919) % rotations;
        let started = segment_start(backend, 4 + rotation);
        let expected = Some(format!("pool-{}", (rotation + 1) % 2));
        for offset in [0, SECOND / 2] {
            let instant = Timestamp::from_unix_micros(started.unix_micros() + offset);
            let begun = Instant::now();
            let segment = queries::resolve_at(backend, "v1", instant).expect("resolves");
            resolve_times.push(begun.elapsed().as_secs_f64() * 1e6);
            assert_eq!(
                segment.map(|segment| segment.deployment),
                expected,
                "at {instant}"
            );
        }
    }
    resolve_times.sort_by(f64::total_cmp);

    let window_start =
        Timestamp::from_unix_micros(start.unix_micros() + (rotations as i64 / 2) * SECOND);
    let window_end = Timestamp::from_unix_micros(window_start.unix_micros() + 3_600 * SECOND);
    let begun = Instant::now();
    let segments = queries::timeline(backend, "v1", window_start, window_end).expect("reads");
    let timeline_ms = begun.elapsed().as_secs_f64() * 1e3;

    println!("as-of resolution, {store}, one alias with {rotations} rotations");
    println!(
        "  build: {build_seconds:.1} s ({:.0} rotations/s)",
        rotations as f64 / build_seconds
    );
    println!(
        "  resolve_at over {} instants (edges and middles): p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        resolve_times.len(),
        percentile(&resolve_times, 0.50),
        percentile(&resolve_times, 0.99),
        resolve_times.last().copied().unwrap_or(0.0)
    );
    println!(
        "  timeline over one hour ({} segments): {timeline_ms:.2} ms",
        segments.len()
    );
}

fn setup(ledger: &mut Ledger) {
    let checkpoint = NewCheckpoint {
        hosted: Some(("openai".into(), "gpt-4o-2024-08-06".into())),
        ..NewCheckpoint::default()
    };
    let mut batch = vec![register_checkpoint(checkpoint, "bench")];
    for pool in ["pool-0", "pool-1"] {
        batch.push(register_deployment(
            NewDeployment {
                name: pool.into(),
                checkpoint: "openai:gpt-4o-2024-08-06".into(),
                dialect: Dialect::Openai,
                base_url: "https://api.openai.com/v1".into(),
                upstream_model: "gpt-4o-2024-08-06".into(),
                expect_served: None,
                api_key_env: None,
                allow_moving_name: false,
                retention: Retention::Digest,
            },
            "bench",
        ));
    }
    batch.push(create_alias(
        NewAlias {
            name: "v1".into(),
            deployment: "pool-0".into(),
            require_evidence: false,
            on_mismatch: MismatchPolicy::Flag,
            answer_model: ascribe_registry::AnswerModel::Served,
        },
        "bench",
    ));
    let outcomes = ledger.append_batch(&batch).expect("setup commits");
    assert!(outcomes.iter().all(Result::is_ok), "setup was refused");
}

fn segment_start(backend: &mut dyn ascribe_store::Backend, seq: u64) -> Timestamp {
    let sql =
        "SELECT start_time FROM registry_alias_segments WHERE alias = 'v1' AND start_seq = $1";
    let text = ascribe_store::query::read(backend, |tx| {
        let row = tx.query_row(sql, &[seq.into()])?.expect("segment exists");
        Ok(row[0].text("start_time")?.to_owned())
    })
    .expect("reads");
    Timestamp::parse(&text).expect("canonical time")
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}
