//! Helpers for tests of crates built on the store: a clock tests move by hand and fresh
//! PostgreSQL schemas. Compiled only with the `testing` feature.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ascribe_ledger::Timestamp;

use crate::Clock;

/// The PostgreSQL server tests use: `ASCRIBE_TEST_POSTGRES`, or the local default.
pub fn postgres_server_url() -> String {
    std::env::var("ASCRIBE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a new, empty schema on the test server and returns a URL whose connections use
/// it, so tests never see each other's ledgers.
///
/// # Panics
///
/// When the server cannot be reached: PostgreSQL tests must fail loudly, never skip.
pub fn fresh_postgres_schema() -> String {
    let server = postgres_server_url();
    let mut client = postgres::Client::connect(&server, postgres::NoTls).unwrap_or_else(|error| {
        panic!("PostgreSQL is required by this test and is not reachable at {server}: {error}")
    });
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).unwrap_or_else(|error| panic!("no randomness: {error}"));
    let schema = format!("t_{}", hex::encode(random));
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap_or_else(|error| panic!("cannot create schema {schema}: {error}"));
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-c%20search_path%3D{schema}")
}

/// A clock that stands still until the test moves it, or that steps forward by a fixed amount
/// each time it is read.
#[derive(Clone, Debug)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
    step_micros: i64,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock::stepping(start, 0)
    }

    /// A clock showing `start` that moves `step_micros` forward after every reading, so that
    /// entries appended in one batch get distinct times.
    pub fn stepping(start: Timestamp, step_micros: i64) -> ManualClock {
        let micros = Arc::new(AtomicI64::new(start.unix_micros()));
        ManualClock {
            micros,
            step_micros,
        }
    }

    /// Sets the time.
    pub fn set(&self, instant: Timestamp) {
        self.micros.store(instant.unix_micros(), Ordering::SeqCst);
    }

    /// Moves the time forward by `micros` microseconds.
    pub fn advance_micros(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.micros.fetch_add(self.step_micros, Ordering::SeqCst))
    }
}

/// The disk's own durability cost, which the ledger's commits are bound by: the median of
/// 200 writes of 4 KiB, each followed by `fdatasync`, in a file in `directory`, in ms.
///
/// # Panics
///
/// When the probe file cannot be written: a benchmark cannot run without it.
pub fn fsync_median_ms(directory: &std::path::Path) -> f64 {
    use std::io::Write as _;
    let path = directory.join("fsync-probe");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
    let block = [7u8; 4096];
    let mut times: Vec<f64> = (0..200)
        .map(|_| {
            let begun = std::time::Instant::now();
            file.write_all(&block)
                .unwrap_or_else(|error| panic!("write: {error}"));
            file.sync_data()
                .unwrap_or_else(|error| panic!("fdatasync: {error}"));
            begun.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
