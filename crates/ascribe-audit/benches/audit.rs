//! Audit answers on a large ledger: how long an auditor waits.
//!
//! ```sh
//! # 10 million inferences (about 20 minutes to build once, on 2 cores):
//! cargo run --release -p ascribe-audit --bin ascribe-generate -- \
//!     --db sqlite://target/audit-10m/ledger.db --key-dir target/audit-10m
//! ASCRIBE_AUDIT_DB=sqlite://$PWD/target/audit-10m/ledger.db \
//!     ASCRIBE_AUDIT_KEY_DIR=$PWD/target/audit-10m ASCRIBE_AUDIT_INFERENCES=10000000 \
//!     cargo bench -p ascribe-audit
//! ```
//!
//! Without those variables it builds a ledger of 200,000 inferences over one day in a
//! temporary directory first. Prints one line per figure, then one JSON line with them all.

use std::io::{BufReader, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use ascribe_audit::export::{export, Format};
use ascribe_audit::search::InferenceQuery;
use ascribe_audit::{alias, checkpoint, inference, package, search, Window};
use ascribe_ledger::Timestamp;
use ascribe_store::{open_backend, query, Backend, DatabaseLocation, SigningKeyFiles};
use serde_json::{json, Value};

const ALIASES: [&str; 4] = [
    "risk-scoring-prod",
    "claims-triage",
    "support-chat",
    "fraud-v2",
];
const DAY: i64 = 86_400_000_000;

/// A small deterministic generator of sample positions (xorshift64*).
struct Samples(u64);

impl Samples {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

fn percentile(durations: &mut [Duration], fraction: f64) -> f64 {
    durations.sort_unstable();
    let index = ((durations.len() as f64 - 1.0) * fraction).round() as usize;
    durations[index].as_secs_f64() * 1000.0
}

fn timed(samples: usize, mut work: impl FnMut(usize)) -> Value {
    let mut durations = Vec::with_capacity(samples);
    for sample in 0..samples {
        let started = Instant::now();
        work(sample);
        durations.push(started.elapsed());
    }
    json!({
        "samples": samples,
        "p50_ms": percentile(&mut durations, 0.5),
        "p99_ms": percentile(&mut durations, 0.99),
    })
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Counts bytes and throws them away.
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn generated_ledger(directory: &std::path::Path) -> (String, std::path::PathBuf, u64) {
    let db = format!("sqlite://{}", directory.join("ledger.db").display());
    let status = Command::new(env!("CARGO_BIN_EXE_ascribe-generate"))
        .args([
            "--db",
            &db,
            "--inferences",
            "200000",
            "--days",
            "1",
            "--key-dir",
        ])
        .arg(directory)
        .status()
        .expect("the generator runs");
    assert!(status.success(), "the generator failed");
    (db, directory.to_owned(), 200_000)
}

fn first_time(backend: &mut dyn Backend) -> Timestamp {
    let entries = query::entries(backend, 0, 1).expect("reads");
    Timestamp::parse(&entries[0].time).expect("time")
}

fn main() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let (db, key_dir, inferences) = match (
        std::env::var("ASCRIBE_AUDIT_DB"),
        std::env::var("ASCRIBE_AUDIT_KEY_DIR"),
    ) {
        (Ok(db), Ok(keys)) => {
            let count = std::env::var("ASCRIBE_AUDIT_INFERENCES")
                .ok()
                .and_then(|text| text.parse().ok())
                .expect("set ASCRIBE_AUDIT_INFERENCES to the generator's --inferences");
            (db, keys.into(), count)
        }
        _ => generated_ledger(scratch.path()),
    };
    let location: DatabaseLocation = db.parse().expect("database URL");
    let mut backend = open_backend(&location, false).expect("opens");
    let backend = backend.as_mut();
    let signer = SigningKeyFiles::in_directory(&key_dir)
        .load_signer()
        .expect("key");
    let entries = query::entry_count(backend).expect("counts");
    let start = first_time(backend);
    let last = query::entries(backend, entries - 1, 1).expect("reads");
    let end = Timestamp::parse(&last[0].time).expect("time");
    let span = end.unix_micros() - start.unix_micros();
    println!("ledger: {entries} entries, {inferences} inferences, {start} .. {end}");

    let mut samples = Samples(0x9e37_79b9_7f4a_7c15);
    let inference_figure = timed(1000, |_| {
        let id = format!("inf_{:032x}", samples.below(inferences));
        inference::inference(backend, &id, Some(&signer)).expect("answers");
    });
    println!("audit inference (with receipt and proof): {inference_figure}");

    let decision_figure = timed(1000, |_| {
        let reference = format!("case-{:010}", samples.below(inferences));
        inference::decision(backend, &reference, Some(&signer)).expect("answers");
    });
    println!("audit decision: {decision_figure}");

    let at_figure = timed(1000, |sample| {
        let instant =
            Timestamp::from_unix_micros(start.unix_micros() + samples.below(span as u64) as i64);
        alias::at(backend, ALIASES[sample % ALIASES.len()], instant).expect("answers");
    });
    println!("audit alias --at: {at_figure}");

    let hour = 3_600_000_000;
    let window_figure = timed(50, |sample| {
        let from = start.unix_micros() + samples.below((span - hour).max(1) as u64) as i64;
        let window = Window::new(
            Timestamp::from_unix_micros(from),
            Timestamp::from_unix_micros(from + hour),
        )
        .expect("window");
        alias::window(backend, ALIASES[sample % ALIASES.len()], window).expect("answers");
    });
    println!("audit alias --from --to (one hour, with counts): {window_figure}");

    let page_figure = timed(200, |_| {
        let from = start.unix_micros() + samples.below((span - DAY).max(1) as u64) as i64;
        let query = InferenceQuery {
            window: Window::new(
                Timestamp::from_unix_micros(from),
                Timestamp::from_unix_micros(from + DAY),
            )
            .expect("window"),
            caller: Some("risk-service".into()),
            alias: None,
            checkpoint: None,
            with_decision: false,
            after: None,
            limit: 100,
        };
        search::inferences(backend, &query).expect("page");
    });
    println!("audit inferences (one day, one caller, 100 rows): {page_figure}");

    let started = Instant::now();
    checkpoint::checkpoint(backend, "openai:model-0-gen1").expect("answers");
    let checkpoint_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!("audit checkpoint (counts over all its inferences): {checkpoint_ms:.1} ms");

    // One day from the middle of the period, streamed to a sink and to a file.
    let middle = start.unix_micros() + (span / 2).max(0);
    let day = Window::new(
        Timestamp::from_unix_micros(middle - DAY / 2),
        Timestamp::from_unix_micros(middle + DAY / 2),
    )
    .expect("window");
    let rss_before = rss_kib("VmRSS:");
    let path = scratch.path().join("day.jsonl");
    let started = Instant::now();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    let summary = export(backend, day, Format::Jsonl, &mut file).expect("exports");
    drop(file);
    let export_seconds = started.elapsed().as_secs_f64();
    let rss_after = rss_kib("VmRSS:");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "export one day jsonl: {} entries, {bytes} bytes in {export_seconds:.2} s \
         ({:.0} entries/s), RSS {rss_before} KiB before, {rss_after} KiB after",
        summary.rows,
        summary.rows as f64 / export_seconds
    );

    let started = Instant::now();
    let reader = BufReader::new(std::fs::File::open(&path).expect("package"));
    let verified = package::verify_package(reader, &signer.verifier()).expect("verifies");
    let verify_seconds = started.elapsed().as_secs_f64();
    println!(
        "verify --export of that day: {} entries in {verify_seconds:.2} s ({:.0} entries/s)",
        verified.entries,
        verified.entries as f64 / verify_seconds
    );

    let started = Instant::now();
    let mut sink = Sink(0);
    let csv = export(backend, day, Format::Csv, &mut sink).expect("exports");
    let csv_seconds = started.elapsed().as_secs_f64();
    println!(
        "export one day csv: {} rows in {csv_seconds:.2} s",
        csv.rows
    );

    let figures = json!({
        "entries": entries,
        "inferences": inferences,
        "audit_inference": inference_figure,
        "audit_decision": decision_figure,
        "audit_alias_at": at_figure,
        "audit_alias_window_hour": window_figure,
        "audit_inferences_page": page_figure,
        "audit_checkpoint_ms": checkpoint_ms,
        "export_day_jsonl": {"entries": summary.rows, "bytes": bytes, "seconds": export_seconds,
            "rss_kib_before": rss_before, "rss_kib_after": rss_after,
            "peak_rss_kib": rss_kib("VmHWM:")},
        "verify_day_jsonl_seconds": verify_seconds,
        "export_day_csv": {"rows": csv.rows, "seconds": csv_seconds},
    });
    println!("{figures}");
}
