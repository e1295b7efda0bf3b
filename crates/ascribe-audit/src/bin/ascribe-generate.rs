//! `ascribe-generate`: builds a large, realistic ledger for benchmarks of the audit answers.
//!
//! It writes what a gateway and its operators would have written over `--days` days: four
//! aliases with three checkpoints each, a rotation of every alias about every 18 hours (every
//! fifth one an incident rollback), and `--inferences` inferences spread evenly over the
//! period, each with a decision reference `case-<n>` and an id `inf_<n as 32 hex digits>`.
//! One inference in 50,000 is served by an unexpected model and adds an observation. Entries
//! go through the same `Ledger` writer, checks and projections as in production.
//!
//! ```sh
//! cargo run --release -p ascribe-audit --bin ascribe-generate -- \
//!     --db sqlite://target/audit-10m/ledger.db --key-dir target/audit-10m
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ascribe_inference::{InferenceRecord, Observation, UpstreamCall};
use ascribe_ledger::Timestamp;
use ascribe_registry::changes::{
    create_alias, register_checkpoint, register_deployment, rotate_alias, NewAlias, NewCheckpoint,
    NewDeployment, NewRotation,
};
use ascribe_registry::{AnswerModel, Dialect, MismatchPolicy, Retention, RotationKind};
use ascribe_store::{
    open_backend, Clock, DatabaseLocation, Ledger, PendingEntry, SigningKeyFiles, TreeHeadPolicy,
};
use clap::Parser;
use serde_json::json;

/// Builds a large ledger of inferences, rotations and observations.
#[derive(Debug, Parser)]
struct Args {
    /// The database to create (sqlite://PATH or postgres://...); it must not hold a ledger.
    #[arg(long)]
    db: String,
    /// Where the signing key is kept (created when missing).
    #[arg(long)]
    key_dir: PathBuf,
    /// Number of inferences.
    #[arg(long, default_value_t = 10_000_000)]
    inferences: u64,
    /// Length of the period, in days.
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// The period's start.
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    start: String,
    /// Entries per transaction.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
}

const ALIASES: [&str; 4] = [
    "risk-scoring-prod",
    "claims-triage",
    "support-chat",
    "fraud-v2",
];
const CALLERS: [&str; 5] = [
    "risk-service",
    "claims-service",
    "support-bot",
    "fraud-engine",
    "batch",
];
const CHECKPOINTS_PER_ALIAS: usize = 3;
const ROTATIONS_PER_ALIAS_PER_DAY: f64 = 4.0 / 3.0;
const MISMATCH_EVERY: u64 = 50_000;

/// A clock that moves forward a fixed step at each reading: entries are spread evenly.
struct SteppingClock {
    micros: AtomicI64,
    step: i64,
}

impl Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.micros.fetch_add(self.step, Ordering::Relaxed))
    }
}

/// The writer's handle on the shared clock.
struct SharedClock(Arc<SteppingClock>);

impl Clock for SharedClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

fn main() {
    let args = Args::parse();
    if let Err(error) = run(&args) {
        eprintln!("ascribe-generate: {error}");
        std::process::exit(1);
    }
}

fn snapshot(alias: usize, generation: usize) -> String {
    format!("model-{alias}-gen{generation}")
}

fn run(args: &Args) -> Result<(), String> {
    let location: DatabaseLocation = args.db.parse().map_err(|e| format!("--db: {e}"))?;
    let files = SigningKeyFiles::in_directory(&args.key_dir);
    std::fs::create_dir_all(&args.key_dir).map_err(|e| e.to_string())?;
    let signer = if files.private_key.exists() {
        files.load_signer().map_err(|e| e.to_string())?
    } else {
        files
            .create("ascribe.bench/audit")
            .map_err(|e| e.to_string())?
    };
    let mut backend = open_backend(&location, true).map_err(|e| e.to_string())?;
    Ledger::init(backend.as_mut(), &signer).map_err(|e| e.to_string())?;
    ascribe_registry::create_tables(backend.as_mut()).map_err(|e| e.to_string())?;
    ascribe_inference::create_tables(backend.as_mut()).map_err(|e| e.to_string())?;

    let start = ascribe_audit::parse_time(&args.start).map_err(|e| e.to_string())?;
    let rotations = (ROTATIONS_PER_ALIAS_PER_DAY * args.days as f64) as u64 * ALIASES.len() as u64;
    let entries = args.inferences + rotations + args.inferences / MISMATCH_EVERY + 64;
    let period = args.days as i64 * 86_400_000_000;
    let clock = Arc::new(SteppingClock {
        micros: AtomicI64::new(start.unix_micros()),
        step: (period / entries as i64).max(1),
    });
    let mut ledger = Ledger::open(
        backend,
        signer,
        Box::new(SharedClock(Arc::clone(&clock))),
        TreeHeadPolicy::EveryBatch,
    )
    .map_err(|e| e.to_string())?;
    ledger.add_projection(Box::new(ascribe_registry::RegistryProjection));
    ledger.add_projection(Box::new(ascribe_inference::InferenceProjection));

    let mut registry = Vec::new();
    for (alias_index, alias) in ALIASES.iter().enumerate() {
        for generation in 0..CHECKPOINTS_PER_ALIAS {
            let snapshot = snapshot(alias_index, generation);
            let checkpoint = NewCheckpoint {
                hosted: Some(("openai".into(), snapshot.clone())),
                ..NewCheckpoint::default()
            };
            registry.push(register_checkpoint(checkpoint, "admin"));
            let deployment = NewDeployment {
                name: format!("{alias}-gen{generation}"),
                checkpoint: format!("openai:{snapshot}"),
                dialect: Dialect::Openai,
                base_url: "https://api.openai.com/v1".into(),
                upstream_model: snapshot,
                expect_served: None,
                api_key_env: Some("OPENAI_API_KEY".into()),
                allow_moving_name: false,
                retention: Retention::Digest,
            };
            registry.push(register_deployment(deployment, "admin"));
        }
        let new_alias = NewAlias {
            name: (*alias).into(),
            deployment: format!("{alias}-gen0"),
            require_evidence: false,
            on_mismatch: MismatchPolicy::Flag,
            answer_model: AnswerModel::Served,
        };
        registry.push(create_alias(new_alias, "admin"));
    }
    append(&mut ledger, registry)?;

    let rotation_every = (args.inferences / rotations.max(1)).max(1);
    let mut generation = [0usize; ALIASES.len()];
    let mut rotation_count = 0u64;
    let mut batch = Vec::with_capacity(args.batch);
    let started = Instant::now();
    for n in 0..args.inferences {
        let alias_index = (n % ALIASES.len() as u64) as usize;
        if n % rotation_every == rotation_every - 1 && rotation_count < rotations {
            let rotating = (rotation_count % ALIASES.len() as u64) as usize;
            batch.push(rotation(
                rotating,
                &mut generation[rotating],
                rotation_count,
            ));
            rotation_count += 1;
        }
        let current = generation[alias_index];
        batch.extend(inference(n, alias_index, current));
        if batch.len() >= args.batch {
            append(&mut ledger, std::mem::take(&mut batch))?;
        }
        if n % 1_000_000 == 999_999 {
            let rate = (n + 1) as f64 / started.elapsed().as_secs_f64();
            eprintln!("{} inferences, {rate:.0}/s", n + 1);
        }
    }
    append(&mut ledger, batch)?;

    let seconds = started.elapsed().as_secs_f64();
    let summary = json!({
        "inferences": args.inferences,
        "rotations": rotation_count,
        "seconds": seconds,
        "inferences_per_second": args.inferences as f64 / seconds,
        "from": start.to_string(),
        "to": clock.now().to_string(),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{summary}").map_err(|e| e.to_string())
}

/// The next rotation of alias `alias_index`: an upgrade to the next generation, or every fifth
/// time an incident rollback to the previous one.
fn rotation(alias_index: usize, generation: &mut usize, count: u64) -> PendingEntry {
    let alias = ALIASES[alias_index];
    let rollback = count % 5 == 4 && *generation > 0;
    let (to, kind, reason) = if rollback {
        *generation -= 1;
        (None, RotationKind::Incident, "error rate above threshold")
    } else {
        *generation = (*generation + 1) % CHECKPOINTS_PER_ALIAS;
        let to = format!("{alias}-gen{generation}");
        (Some(to), RotationKind::Upgrade, "scheduled refresh")
    };
    let rotation = NewRotation {
        alias: alias.into(),
        to,
        kind,
        reason: reason.into(),
        evidence: None,
    };
    rotate_alias(rotation, "ops")
}

/// Inference `n` through alias `alias_index` on generation `generation`, with its observation
/// when it is one of the mismatched ones.
fn inference(n: u64, alias_index: usize, generation: usize) -> Vec<PendingEntry> {
    let alias = ALIASES[alias_index];
    let snapshot = snapshot(alias_index, generation);
    let mismatch = n % MISMATCH_EVERY == MISMATCH_EVERY - 1;
    let served = if mismatch {
        format!("{snapshot}-preview")
    } else {
        snapshot.clone()
    };
    let record = InferenceRecord {
        inference_id: format!("inf_{n:032x}"),
        api: "chat.completions".into(),
        caller: CALLERS[(n % CALLERS.len() as u64) as usize].into(),
        decision: Some(format!("case-{n:010}")),
        requested_model: alias.into(),
        alias: Some(alias.into()),
        deployment: format!("{alias}-gen{generation}"),
        checkpoint: format!("openai:{snapshot}"),
        moving_name: false,
        upstream: UpstreamCall {
            dialect: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            model: snapshot.clone(),
        },
        served: json!({"model": served, "system_fingerprint": "fp_0001"}),
        identity_match: if mismatch { "mismatch" } else { "match" }.into(),
        mismatch_kind: mismatch.then(|| "different_model".into()),
        stream: false,
        status: 200,
        outcome: "answered".into(),
        request_sha256: format!("{n:064x}"),
        response_sha256: Some(format!("{:064x}", n + 1)),
        usage: Some(json!({"prompt_tokens": 412, "completion_tokens": 37})),
        error: None,
        upstream_ms: None,
        retained: None,
    };
    let mut entries = Vec::with_capacity(2);
    if let Ok(entry) = record.into_entry() {
        entries.push(entry);
    }
    if mismatch {
        let observation = Observation {
            kind: "served_model_mismatch".into(),
            inference_id: format!("inf_{n:032x}"),
            deployment: format!("{alias}-gen{generation}"),
            checkpoint: format!("openai:{snapshot}"),
            expected: snapshot,
            served_model: Some(served),
            system_fingerprint: None,
            mismatch_kind: Some("different_model".into()),
        };
        if let Ok(entry) = observation.into_entry() {
            entries.push(entry);
        }
    }
    entries
}

fn append(ledger: &mut Ledger, batch: Vec<PendingEntry>) -> Result<(), String> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = ledger.append_batch(&batch).map_err(|e| e.to_string())?;
    for outcome in outcomes {
        outcome.map_err(|rejection| format!("an entry was refused: {rejection}"))?;
    }
    Ok(())
}
