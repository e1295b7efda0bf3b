//! `GET /healthz` (the process is up) and `GET /readyz` (it can do its job: record before it
//! answers), both open without a key.
//!
//! Readiness is what a load balancer should route on. The gateway is ready when its signing
//! key signs and the ledger took a write just now: each `/readyz` asks the ledger writer for
//! a writability check (one write transaction that appends nothing, queued behind the
//! entries already waiting). Between checks, every commit and every failed write updates
//! the ledger's status, so a full disk or a read-only database shows here as soon as an
//! append meets it, and recovery shows as soon as a write succeeds again. Upstreams are
//! reported (the last call to each deployment and its last identity probe) but do not make
//! the gateway unready: other deployments may still be served.
//!
//! LIMITATION: the writability check writes the ledger's own tables, not the projections
//! (`inferences`, registry tables); a projection table that alone cannot be written fails
//! every inference with a 503 while `/readyz` says ready again 500 ms after the last failed
//! write. Checking each projection would need a write into each, which projections do not
//! offer yet.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ascribe_ledger::Timestamp;
use ascribe_store::{CommitObserver, StoreError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::metrics::Metrics;
use crate::state::AppState;

/// How long `/readyz` waits for the writer's check before calling the ledger not ready.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A check younger than this is reused, so a busy prober cannot flood the writer.
const CHECK_REUSE: Duration = Duration::from_millis(500);

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health_show))
        .route("/readyz", get(readiness_show))
}

/// The health answer.
#[derive(Serialize)]
pub(crate) struct Health {
    status: &'static str,
}

async fn health_show() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// What the gateway knows of its ability to record and of its upstreams.
#[derive(Default)]
pub(crate) struct Readiness {
    ledger: Mutex<LedgerStatus>,
    /// When the writability check still queued on the writer was queued, if one is: a
    /// writer stuck behind a lock must not collect one more check per probe.
    check_queued: Mutex<Option<Instant>>,
    /// Woken when the writer finished a writability check.
    check_finished: tokio::sync::Notify,
    upstreams: Mutex<BTreeMap<String, UpstreamStatus>>,
}

#[derive(Clone, Default)]
struct LedgerStatus {
    /// When the last write (an append or a check) succeeded.
    last_success: Option<(Instant, Timestamp)>,
    /// The last write that failed, and why.
    last_failure: Option<(Instant, Timestamp, String)>,
}

impl LedgerStatus {
    /// Writable when the latest write attempt succeeded.
    fn writable(&self) -> bool {
        match (&self.last_success, &self.last_failure) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some((succeeded, _)), Some((failed, _, _))) => succeeded > failed,
        }
    }
}

/// The last call to one deployment, and its last identity probe.
#[derive(Clone, Default, Serialize)]
pub(crate) struct UpstreamStatus {
    /// The last inference sent to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_call: Option<CallStatus>,
    /// The last identity probe of it (self-hosted deployments, when probing is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_probe: Option<ProbeStatus>,
}

#[derive(Clone, Serialize)]
struct CallStatus {
    at: String,
    status: u16,
    outcome: String,
}

#[derive(Clone, Serialize)]
struct ProbeStatus {
    at: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Readiness {
    /// A write succeeded.
    fn ledger_wrote(&self) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.last_success = Some((Instant::now(), now()));
        }
    }

    /// A write failed, for `reason`.
    fn ledger_failed(&self, reason: String) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.last_failure = Some((Instant::now(), now(), reason));
        }
    }

    fn ledger_status(&self) -> LedgerStatus {
        self.ledger
            .lock()
            .map(|status| status.clone())
            .unwrap_or_default()
    }

    /// Whether a check ran so recently that its outcome still stands.
    fn recently_checked(&self) -> bool {
        let status = self.ledger_status();
        let latest = [
            status.last_success.map(|(at, _)| at),
            status.last_failure.map(|(at, _, _)| at),
        ]
        .into_iter()
        .flatten()
        .max();
        latest.is_some_and(|at| at.elapsed() < CHECK_REUSE)
    }

    /// The writer finished the queued writability check (transactions of no entries are
    /// checks).
    fn check_done(&self) {
        if let Ok(mut queued) = self.check_queued.lock() {
            *queued = None;
        }
        self.check_finished.notify_waiters();
    }

    /// When the check still queued was queued; queues one now (at `now`) if none is.
    fn queue_check(&self, state: &AppState) -> Option<Instant> {
        let mut queued = self.check_queued.lock().ok()?;
        if queued.is_none() && state.queue_writability_check() {
            *queued = Some(Instant::now());
        }
        *queued
    }

    fn check_pending(&self) -> bool {
        self.check_queued
            .lock()
            .map(|queued| queued.is_some())
            .unwrap_or(true)
    }

    /// The outcome of the last inference sent to `deployment`.
    pub(crate) fn upstream_called(&self, deployment: &str, status: u16, outcome: &str) {
        if let Ok(mut upstreams) = self.upstreams.lock() {
            let entry = upstreams.entry(deployment.to_owned()).or_default();
            entry.last_call = Some(CallStatus {
                at: now().to_string(),
                status,
                outcome: outcome.to_owned(),
            });
        }
    }

    /// The outcome of an identity probe of `deployment`: `None` when it answered.
    pub(crate) fn upstream_probed(&self, deployment: &str, failure: Option<String>) {
        if let Ok(mut upstreams) = self.upstreams.lock() {
            let entry = upstreams.entry(deployment.to_owned()).or_default();
            entry.last_probe = Some(ProbeStatus {
                at: now().to_string(),
                ok: failure.is_none(),
                reason: failure,
            });
        }
    }

    fn upstreams(&self) -> BTreeMap<String, UpstreamStatus> {
        self.upstreams
            .lock()
            .map(|upstreams| upstreams.clone())
            .unwrap_or_default()
    }
}

fn now() -> Timestamp {
    Timestamp::from_unix_micros(chrono::Utc::now().timestamp_micros())
}

/// What the ledger writer reports, turned into metrics and readiness.
pub(crate) struct LedgerWatch {
    pub(crate) metrics: std::sync::Arc<Metrics>,
    pub(crate) readiness: std::sync::Arc<Readiness>,
}

impl CommitObserver for LedgerWatch {
    fn committed(&self, entries: usize, took: Duration) {
        self.metrics.ledger_committed(entries, took);
        self.readiness.ledger_wrote();
        if entries == 0 {
            self.readiness.check_done();
        }
    }

    fn failed(&self, entries: usize, error: &StoreError) {
        self.metrics.ledger_failed();
        self.readiness.ledger_failed(error.to_string());
        if entries == 0 {
            self.readiness.check_done();
        }
    }
}

/// The readiness answer.
#[derive(Serialize)]
struct ReadinessAnswer {
    ready: bool,
    checks: Checks,
    upstreams: BTreeMap<String, UpstreamStatus>,
}

#[derive(Serialize)]
struct Checks {
    ledger: LedgerCheck,
    signing_key: KeyCheck,
}

#[derive(Serialize)]
struct LedgerCheck {
    ok: bool,
    /// The database, without credentials.
    store: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_write: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_failure: Option<String>,
}

#[derive(Serialize)]
struct KeyCheck {
    ok: bool,
    /// The key's name (the ledger's origin).
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

async fn readiness_show(State(state): State<AppState>) -> (StatusCode, Json<ReadinessAnswer>) {
    let readiness = state.readiness();
    let timed_out = match readiness.recently_checked() {
        true => false,
        // The outcome reaches `readiness` through the writer's observer.
        false => !writability_checked(&state).await,
    };
    let status = readiness.ledger_status();
    let ledger_ok = status.writable() && !timed_out;
    let reason = if timed_out {
        Some(format!(
            "the ledger writer did not complete a check within {} s: a lock held by another \
             process, or a slow disk",
            CHECK_TIMEOUT.as_secs()
        ))
    } else if !ledger_ok {
        status
            .last_failure
            .as_ref()
            .map(|(_, _, reason)| format!("the ledger cannot be written: {reason}"))
    } else {
        None
    };
    let ledger = LedgerCheck {
        ok: ledger_ok,
        store: state.store_description().to_owned(),
        reason,
        last_write: status.last_success.map(|(_, at)| at.to_string()),
        last_failure: status
            .last_failure
            .map(|(_, at, reason)| format!("{at}: {reason}")),
    };
    let signing_key = key_check(&state);
    let ready = ledger.ok && signing_key.ok;
    if !ready {
        tracing::warn!(
            ledger = ledger.reason.as_deref().unwrap_or("ok"),
            signing_key = signing_key.reason.as_deref().unwrap_or("ok"),
            "not ready"
        );
    }
    let answer = ReadinessAnswer {
        ready,
        checks: Checks {
            ledger,
            signing_key,
        },
        upstreams: readiness.upstreams(),
    };
    let code = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(answer))
}

/// Queues a writability check on the ledger writer, unless one is queued already, and waits
/// for it at most [`CHECK_TIMEOUT`] from when it was queued; false when it did not finish.
async fn writability_checked(state: &AppState) -> bool {
    let readiness = state.readiness();
    let Some(queued_at) = readiness.queue_check(state) else {
        return false;
    };
    let deadline = tokio::time::Instant::from_std(queued_at + CHECK_TIMEOUT);
    loop {
        let finished = readiness.check_finished.notified();
        tokio::pin!(finished);
        // Registered before the flag is read, so a check finishing in between still wakes it.
        finished.as_mut().enable();
        if !readiness.check_pending() {
            return true;
        }
        if tokio::time::timeout_at(deadline, finished).await.is_err() {
            return !readiness.check_pending();
        }
    }
}

/// Signs a fixed message and verifies the signature, which is what every receipt and tree
/// head needs of the key.
fn key_check(state: &AppState) -> KeyCheck {
    let signer = state.signer();
    let message = b"ascribe readiness check";
    let signature = signer.sign_bytes(message);
    let ok = signer.verifier().verify_bytes(message, &signature);
    KeyCheck {
        ok,
        key: signer.name().to_owned(),
        reason: (!ok).then(|| "the signing key does not verify its own signature".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_write_attempt_decides_writability() {
        let readiness = Readiness::default();
        assert!(readiness.ledger_status().writable(), "nothing failed yet");
        readiness.ledger_failed("disk full".into());
        assert!(!readiness.ledger_status().writable());
        readiness.ledger_wrote();
        assert!(readiness.ledger_status().writable(), "recovered");
        readiness.ledger_failed("read-only".into());
        assert!(!readiness.ledger_status().writable());
    }
}
