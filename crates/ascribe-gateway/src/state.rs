//! What handlers share: the ledger's single writer, a small pool of read connections, the
//! metrics and what readiness knows.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ascribe_ledger::NoteSigner;
use ascribe_store::{
    open_backend, open_backend_with_lock_timeout, AppendError, AppendedEntry, Appender,
    AppenderConfig, Backend, DatabaseLocation, Ledger, PendingEntry, StoreError, SystemClock,
    TreeHeadPolicy,
};
use tokio_util::task::TaskTracker;

use crate::error::ApiError;
use crate::health::{LedgerWatch, Readiness};
use crate::metrics::Metrics;

/// Limits, timeouts and switches of the gateway; `ascribe serve` fills it from its
/// configuration file, `ASCRIBE_*` variables and flags.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// How long to wait for a TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// How long to wait for an upstream's response headers, and between two chunks of a
    /// stream; a silent upstream is cut after this long.
    pub upstream_timeout: Duration,
    /// Longest a call may wait on its upstream in all, from sending it to the last byte of a
    /// whole answer (to the first event that names the served model, for a stream).
    pub upstream_deadline: Duration,
    /// Largest upstream response body read for a non-streamed answer, in bytes.
    pub max_upstream_body: usize,
    /// Largest request body accepted from a caller, in bytes; a larger one is a 413.
    pub max_request_body: usize,
    /// How often to probe self-hosted deployments' identity; `None` never does.
    pub probe_interval: Option<Duration>,
    /// How often the writer signs a tree head while entries keep arriving (and after this
    /// long idle with unsigned entries).
    pub tree_head_interval: Duration,
    /// Most entries the writer commits in one transaction.
    pub max_batch: usize,
    /// How long the writer waits for a lock on the ledger that another connection holds
    /// (SQLite's busy timeout, PostgreSQL's `lock_timeout`) before the write fails and its
    /// callers get a 503.
    pub ledger_lock_timeout: Duration,
    /// Read connections: at most this many reads run at once, each on a pooled connection,
    /// so a burst of requests waits briefly for a connection instead of opening new ones.
    pub max_readers: usize,
    /// Whether `GET /metrics` answers (404 when off).
    pub metrics: bool,
    /// After a shutdown signal, how long answers in flight (streams included) may take to
    /// finish before their connections are closed.
    pub shutdown_grace: Duration,
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            connect_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(300),
            upstream_deadline: Duration::from_secs(600),
            max_upstream_body: 64 * 1024 * 1024,
            max_request_body: crate::MAX_BODY_BYTES,
            probe_interval: None,
            tree_head_interval: Duration::from_secs(1),
            max_batch: 1024,
            ledger_lock_timeout: Duration::from_secs(5),
            max_readers: 8,
            metrics: true,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The gateway's shared state; cloning it is cheap.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    /// The ledger's key, for the receipts handed out with answers.
    signer: NoteSigner,
    /// The HTTP client every upstream call goes through (connection pools per host).
    client: reqwest::Client,
    /// Limits and timeouts of inference calls.
    config: GatewayConfig,
    /// The only writer of the ledger in this process. Handlers wait on it until their entry is
    /// durable. Taken out only when the last clone of the state is dropped, which stops the
    /// writer thread after it committed what was queued and signed a final tree head.
    appender: Option<Appender>,
    /// Connections for reads (authentication, registry queries), used on blocking threads.
    readers: Readers,
    /// The gateway's counters and histograms.
    metrics: Arc<Metrics>,
    /// What `/readyz` reports.
    readiness: Arc<Readiness>,
    /// Tasks that outlive their request (stream relays recording a completion); shutdown
    /// waits for them before it stops the writer.
    tasks: TaskTracker,
    /// The database, without credentials, for `/readyz`.
    store: String,
    /// Served fingerprints the ledger is known to hold, by checkpoint: an answer carrying one
    /// of them needs no `new_system_fingerprint` observation, so the writer is not asked to
    /// check it again.
    known_fingerprints: Mutex<KnownFingerprints>,
}

/// Served fingerprints the ledger holds, by checkpoint, up to a limit: an upstream that sends
/// a new one with every answer must not grow the gateway's memory, so all are forgotten when
/// the limit is reached (each is then checked by the writer, as it would be without this
/// memory).
#[derive(Default)]
struct KnownFingerprints {
    by_checkpoint: HashMap<String, HashSet<String>>,
    count: usize,
}

impl KnownFingerprints {
    /// Most fingerprints remembered at once.
    const LIMIT: usize = 4096;

    fn contains(&self, checkpoint: &str, fingerprint: &str) -> bool {
        self.by_checkpoint
            .get(checkpoint)
            .is_some_and(|fingerprints| fingerprints.contains(fingerprint))
    }

    fn insert(&mut self, checkpoint: &str, fingerprint: &str) {
        if self.contains(checkpoint, fingerprint) {
            return;
        }
        if self.count >= KnownFingerprints::LIMIT {
            self.by_checkpoint.clear();
            self.count = 0;
        }
        self.by_checkpoint
            .entry(checkpoint.to_owned())
            .or_default()
            .insert(fingerprint.to_owned());
        self.count += 1;
    }
}

impl AppState {
    /// Opens the ledger at `location` for writing, with the access and registry projections
    /// registered, and starts its writer thread. Call it outside an async runtime: the
    /// PostgreSQL client blocks on a runtime of its own.
    pub fn open(location: &DatabaseLocation, signer: NoteSigner) -> Result<AppState, StoreError> {
        AppState::open_with(location, signer, GatewayConfig::default())
    }

    /// [`AppState::open`] with explicit limits and timeouts.
    pub fn open_with(
        location: &DatabaseLocation,
        signer: NoteSigner,
        config: GatewayConfig,
    ) -> Result<AppState, StoreError> {
        let backend = open_backend_with_lock_timeout(location, config.ledger_lock_timeout)?;
        let store = backend.describe();
        let policy = TreeHeadPolicy::Interval(config.tree_head_interval);
        let mut ledger = Ledger::open(backend, signer.clone(), Box::new(SystemClock), policy)?;
        ledger.add_projection(Box::new(ascribe_access::AccessKeysProjection));
        ledger.add_projection(Box::new(ascribe_registry::RegistryProjection));
        ledger.add_projection(Box::new(ascribe_inference::InferenceProjection));
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|error| StoreError::Inconsistent(format!("no HTTP client: {error}")))?;
        let metrics = Arc::new(Metrics::new());
        let readiness = Arc::new(Readiness::default());
        let watch = LedgerWatch {
            metrics: Arc::clone(&metrics),
            readiness: Arc::clone(&readiness),
        };
        let appender_config = AppenderConfig {
            max_batch: config.max_batch.max(1),
            idle_head_interval: Some(config.tree_head_interval),
            observer: Some(Arc::new(watch)),
        };
        let appender = Appender::start(ledger, appender_config);
        let max_readers = config.max_readers.max(1);
        let readers = Readers {
            location: location.clone(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(max_readers)),
            max_idle: max_readers,
        };
        Ok(AppState {
            shared: Arc::new(Shared {
                signer,
                client,
                config,
                appender: Some(appender),
                readers,
                metrics,
                readiness,
                tasks: TaskTracker::new(),
                store,
                known_fingerprints: Mutex::new(KnownFingerprints::default()),
            }),
        })
    }

    /// Waits until the tasks that outlive their requests (stream relays) are done, at most
    /// `grace`; returns how many were still running then.
    pub(crate) async fn finish_tasks(&self, grace: Duration) -> usize {
        let tasks = &self.shared.tasks;
        tasks.close();
        match tokio::time::timeout(grace, tasks.wait()).await {
            Ok(()) => 0,
            Err(_) => tasks.len(),
        }
    }

    /// Runs `task` on the runtime, tracked so that shutdown waits for it.
    pub(crate) fn spawn_tracked<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.shared.tasks.spawn(task);
    }

    /// Queues a check that the ledger can be written now (see `Ledger::check_writable`); its
    /// outcome reaches the readiness through the writer's observer. False when the writer
    /// has stopped.
    pub(crate) fn queue_writability_check(&self) -> bool {
        match &self.shared.appender {
            // Queued on the call; the answer is read from the observer, not awaited here.
            Some(appender) => {
                drop(appender.check_writable());
                true
            }
            None => false,
        }
    }

    /// The gateway's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// What `/readyz` reports.
    pub(crate) fn readiness(&self) -> &Readiness {
        &self.shared.readiness
    }

    /// The ledger's database, without credentials.
    pub(crate) fn store_description(&self) -> &str {
        &self.shared.store
    }

    /// Stops the writer once nothing else holds the state: it commits what is queued and
    /// signs a tree head over the last entries. Blocks until then.
    pub fn close(self) {
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => drop(shared),
            // Stream relays cut at the end of the grace period still hold the state; the
            // writer stops when the last of them is dropped with the runtime.
            Err(_) => tracing::warn!(
                "answers still in flight hold the ledger; it closes when they are dropped"
            ),
        }
    }

    /// Appends one entry and waits until it is durable.
    pub(crate) async fn append(&self, pending: PendingEntry) -> Result<AppendedEntry, AppendError> {
        match &self.shared.appender {
            Some(appender) => appender.append(pending).await,
            None => Err(AppendError::Stopped),
        }
    }

    /// Appends entries in order and waits until each is durable (or refused).
    pub(crate) async fn append_all(
        &self,
        pendings: Vec<PendingEntry>,
    ) -> Vec<Result<AppendedEntry, AppendError>> {
        match &self.shared.appender {
            Some(appender) => appender.append_all(pendings).await,
            None => pendings.iter().map(|_| Err(AppendError::Stopped)).collect(),
        }
    }

    /// Whether the ledger is known to hold `fingerprint` for `checkpoint` already.
    pub(crate) fn fingerprint_known(&self, checkpoint: &str, fingerprint: &str) -> bool {
        let known = self.shared.known_fingerprints.lock();
        known.is_ok_and(|known| known.contains(checkpoint, fingerprint))
    }

    /// Remembers that the ledger holds `fingerprint` for `checkpoint`: its observation was
    /// recorded, or refused because an earlier one was.
    pub(crate) fn fingerprint_in_ledger(&self, checkpoint: &str, fingerprint: &str) {
        if let Ok(mut known) = self.shared.known_fingerprints.lock() {
            known.insert(checkpoint, fingerprint);
        }
    }

    /// The ledger's key, for receipts.
    pub(crate) fn signer(&self) -> &NoteSigner {
        &self.shared.signer
    }

    /// The client for upstream calls.
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.shared.client
    }

    /// Limits and timeouts of inference calls.
    pub(crate) fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// Runs `work` on a read connection, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let permits = Arc::clone(&shared.readers.permits);
        let Ok(permit) = permits.acquire_owned().await else {
            return Err(ApiError::Unavailable("the gateway is shutting down"));
        };
        let outcome = tokio::task::spawn_blocking(move || {
            let result = shared.readers.with(work);
            drop(permit);
            result
        })
        .await;
        match outcome {
            Ok(result) => Ok(result?),
            Err(error) => Err(ApiError::internal("read task failed", &error)),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let appender = self.appender.take();
        let idle = self.readers.take_idle();
        // The PostgreSQL client closes by blocking on a runtime of its own, which panics on a
        // tokio thread; a plain thread may block, whatever context this drop runs in.
        let close = move || {
            if let Some(appender) = appender {
                if appender.shutdown().is_none() {
                    tracing::error!("ledger writer stopped abnormally; run `ascribe verify`");
                }
            }
            drop(idle);
        };
        match std::thread::Builder::new()
            .name("ascribe-gateway-close".into())
            .spawn(close)
        {
            Ok(closing) => {
                if closing.join().is_err() {
                    tracing::error!("closing the ledger panicked; run `ascribe verify`");
                }
            }
            Err(error) => tracing::error!(%error, "no thread to close the ledger on"),
        }
    }
}

/// Read connections, opened on demand and kept while they work.
struct Readers {
    location: DatabaseLocation,
    idle: Mutex<Vec<Box<dyn Backend>>>,
    /// One permit per read that may run at once.
    permits: Arc<tokio::sync::Semaphore>,
    /// Most idle connections kept.
    max_idle: usize,
}

impl Readers {
    /// Runs `work` on an idle connection or a new one. A connection whose work failed is
    /// closed rather than kept, so a broken connection is replaced on the next request.
    fn with<T>(
        &self,
        work: impl FnOnce(&mut dyn Backend) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut backend = match pooled {
            Some(backend) => backend,
            None => open_backend(&self.location, false)?,
        };
        let result = work(backend.as_mut());
        if result.is_ok() {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < self.max_idle {
                    idle.push(backend);
                }
            }
        }
        result
    }

    fn take_idle(&mut self) -> Vec<Box<dyn Backend>> {
        match self.idle.get_mut() {
            Ok(idle) => std::mem::take(idle),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_known_per_checkpoint_and_forgotten_at_the_limit() {
        let mut known = KnownFingerprints::default();
        known.insert("openai:gpt-4o-2024-08-06", "fp_1");
        assert!(known.contains("openai:gpt-4o-2024-08-06", "fp_1"));
        assert!(!known.contains("openai:gpt-4o-2024-08-06", "fp_2"));
        assert!(!known.contains("openai:gpt-4o-mini", "fp_1"));

        known.insert("openai:gpt-4o-2024-08-06", "fp_1");
        assert_eq!(
            known.count, 1,
            "a fingerprint already known is not counted again"
        );
        for index in 1..KnownFingerprints::LIMIT {
            known.insert("openai:gpt-4o-mini", &format!("fp_{index}"));
        }
        assert_eq!(known.count, KnownFingerprints::LIMIT);
        assert!(known.contains("openai:gpt-4o-2024-08-06", "fp_1"));

        known.insert("openai:gpt-4o-mini", "one too many");
        assert_eq!(known.count, 1);
        assert!(!known.contains("openai:gpt-4o-2024-08-06", "fp_1"));
        assert!(known.contains("openai:gpt-4o-mini", "one too many"));
    }
}
