//! `ascribe-ledger-load`: a load generator for the ledger store, for tests and benchmarks.
//!
//! It opens a ledger (SQLite or PostgreSQL), starts one [`Appender`] and appends `--entries`
//! entries from `--threads` threads through it, the way a gateway's request handlers would.
//! It is not part of Ascribe's command line; the store's integration tests use it as a real
//! separate process (two writers on one database, a writer killed with SIGKILL), and it
//! measures append throughput:
//!
//! ```text
//! ascribe-ledger-load --db sqlite:///tmp/l.db --key-dir /tmp/keys --init --entries 10000
//! {"entries":10000,"seconds":1.52,"entries_per_second":6578.9}
//! ```
//!
//! With `--print-acks`, every acknowledged (durable) entry is printed as soon as its caller
//! hears back, as `ack <seq> <sha256 hex of the entry's canonical bytes>`, and stdout is
//! flushed after each line, so a parent process knows which entries a crash must not lose.
//! The closing JSON line is printed only when every entry was acknowledged; any failed
//! append ends the process with a non-zero status.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ascribe_ledger::NoteSigner;
use ascribe_store::{
    open_backend, Appender, AppenderConfig, DatabaseLocation, Ledger, PendingEntry,
    SigningKeyFiles, StoreError, SystemClock, TreeHeadPolicy,
};
use clap::Parser;
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// Appends entries to an Ascribe ledger from several threads and reports the throughput.
#[derive(Debug, Parser)]
#[command(name = "ascribe-ledger-load", version)]
struct Args {
    /// The database: sqlite://PATH or postgres://...
    #[arg(long)]
    db: String,
    /// Directory holding the ledger's key pair (`ledger.key`, `ledger.pub`).
    #[arg(long)]
    key_dir: PathBuf,
    /// Create the key pair and the ledger schema if they are missing.
    #[arg(long)]
    init: bool,
    /// Number of entries to append, in total over all threads.
    #[arg(long, default_value_t = 1000)]
    entries: u64,
    /// Number of appending threads.
    #[arg(long, default_value_t = 4)]
    threads: u64,
    /// Most entries the writer commits in one transaction.
    #[arg(long, default_value_t = 1024)]
    batch_max: usize,
    /// Print `ack <seq> <sha256 hex>` for every acknowledged entry.
    #[arg(long)]
    print_acks: bool,
    /// Sign a tree head when the last one is this old, in milliseconds; 0 signs after
    /// every batch.
    #[arg(long, default_value_t = 1000)]
    head_interval_ms: u64,
    /// Origin (key name) used when `--init` creates a new key.
    #[arg(long, default_value = "ascribe.load/ledger")]
    origin: String,
    /// The `actor` of the appended entries.
    #[arg(long, default_value = "load")]
    actor: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ascribe-ledger-load: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let location: DatabaseLocation = args.db.parse().map_err(text)?;
    let mut backend = open_backend(&location, args.init).map_err(text)?;
    let signer = load_or_create_signer(args)?;
    if args.init {
        Ledger::init(backend.as_mut(), &signer).map_err(text)?;
    }
    let policy = match args.head_interval_ms {
        0 => TreeHeadPolicy::EveryBatch,
        millis => TreeHeadPolicy::Interval(Duration::from_millis(millis)),
    };
    let ledger = Ledger::open(backend, signer, Box::new(SystemClock), policy).map_err(text)?;
    let appender = Arc::new(Appender::start(
        ledger,
        AppenderConfig {
            max_batch: args.batch_max.max(1),
            idle_head_interval: Some(Duration::from_millis(args.head_interval_ms.max(1))),
            ..AppenderConfig::default()
        },
    ));

    let started = Instant::now();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let threads = args.threads.max(1);
    let workers: Vec<_> = (0..threads)
        .map(|thread_index| {
            let appender = Arc::clone(&appender);
            let acknowledged = Arc::clone(&acknowledged);
            let first_error = Arc::clone(&first_error);
            let share = (thread_index..args.entries).step_by(threads as usize);
            let (print_acks, actor) = (args.print_acks, args.actor.clone());
            thread::spawn(move || {
                for index in share {
                    let pending = PendingEntry::new(
                        "load.appended",
                        &actor,
                        json!({
                            "process": std::process::id(),
                            "thread": thread_index,
                            "index": index,
                            "payload": "model=load-test/v1 input_sha256=e3b0c44298fc1c14",
                        }),
                    );
                    match appender.append_blocking(pending) {
                        Ok(appended) if print_acks => {
                            if let Err(error) = print_ack(&appended.entry) {
                                record(&first_error, error);
                                return;
                            }
                            acknowledged.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {
                            acknowledged.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            record(&first_error, format!("append {index} failed: {error}"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "an appending thread panicked".to_owned())?;
    }
    let appender = Arc::into_inner(appender).ok_or("appender still shared")?;
    if appender.shutdown().is_none() {
        return Err("the ledger writer thread panicked".to_owned());
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = first_error.lock().map_err(text)?.take() {
        return Err(error);
    }
    let entries = acknowledged.load(Ordering::Relaxed);
    let rate = if seconds > 0.0 {
        entries as f64 / seconds
    } else {
        0.0
    };
    let summary = json!({"entries": entries, "seconds": seconds, "entries_per_second": rate});
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{summary}").map_err(text)?;
    stdout.flush().map_err(text)
}

/// Loads the key pair from `--key-dir`, creating it first when `--init` is given and no
/// private key exists yet.
fn load_or_create_signer(args: &Args) -> Result<NoteSigner, String> {
    let files = SigningKeyFiles::in_directory(&args.key_dir);
    if args.init && !files.private_key.exists() {
        return match files.create(&args.origin) {
            Ok(signer) => Ok(signer),
            // Another process created it between the check and the create: use theirs.
            Err(StoreError::File { cause: source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                files.load_signer().map_err(text)
            }
            Err(error) => Err(error.to_string()),
        };
    }
    files.load_signer().map_err(text)
}

fn print_ack(entry: &ascribe_ledger::Entry) -> Result<(), String> {
    let bytes = entry.to_canonical_bytes().map_err(text)?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ack {} {digest}", entry.seq).map_err(text)?;
    stdout.flush().map_err(text)
}

fn record(slot: &Mutex<Option<String>>, error: String) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(error);
    }
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}
