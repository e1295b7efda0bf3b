//! Group commit: many callers, one writer thread, one transaction per batch.
//!
//! Callers send a [`PendingEntry`] and wait on a reply. The writer thread takes the first
//! waiting entry, drains whatever else queued up while the previous batch was being made
//! durable (up to [`AppenderConfig::max_batch`]), and commits them together. A caller hears
//! back only after the commit that holds its entry returned, so an acknowledged entry is
//! always durable; entries are numbered in the order the writer takes them. Entries handed
//! over together ([`Appender::append_all`]) are committed together or not at all.

use std::future::Future;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::ledger::{AppendedEntry, Ledger, PendingEntry, Rejection};
use crate::StoreError;

/// Tuning of the writer thread.
#[derive(Clone)]
pub struct AppenderConfig {
    /// Most entries committed in one transaction.
    pub max_batch: usize,
    /// How long the writer waits idle before signing a head over unsigned entries; `None`
    /// signs only as the ledger's [`crate::TreeHeadPolicy`] says, plus once at shutdown.
    pub idle_head_interval: Option<Duration>,
    /// Told about every commit and every failed write, from the writer thread.
    pub observer: Option<Arc<dyn CommitObserver>>,
}

impl Default for AppenderConfig {
    fn default() -> AppenderConfig {
        AppenderConfig {
            max_batch: 1024,
            idle_head_interval: Some(Duration::from_secs(1)),
            observer: None,
        }
    }
}

impl std::fmt::Debug for AppenderConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AppenderConfig")
            .field("max_batch", &self.max_batch)
            .field("idle_head_interval", &self.idle_head_interval)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// What the writer thread reports as it works: metrics and readiness are built on it. Calls
/// come from the writer thread, between two transactions, so they must be quick.
pub trait CommitObserver: Send + Sync {
    /// A transaction holding `entries` entries committed after `took` (the whole
    /// transaction: lock, catch-up, writes and the commit's flush).
    fn committed(&self, entries: usize, took: Duration);

    /// A write of `entries` entries (0 for a writability check) failed; nothing of it was
    /// written.
    fn failed(&self, entries: usize, error: &StoreError);
}

/// Why an append was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The entry's check refused it; nothing was written for it.
    #[error("refused: {0}")]
    Refused(String),
    /// The batch holding the entry could not be committed; nothing of it was written.
    #[error("ledger write failed: {0}")]
    Store(String),
    /// The writer thread has stopped.
    #[error("ledger writer has stopped")]
    Stopped,
}

/// What callers hand the writer thread.
enum Request {
    /// Entries handed over together, each with the channel its caller waits on; the writer
    /// never splits one request between two batches.
    Append(Vec<(PendingEntry, Reply)>),
    /// A writability check: one write transaction that appends nothing.
    Check(oneshot::Sender<Result<(), AppendError>>),
}

type Reply = oneshot::Sender<Result<AppendedEntry, AppendError>>;

/// The entries of one [`Request::Append`]: committed in one transaction, never split.
type Group = Vec<(PendingEntry, Reply)>;

/// A handle to the writer thread; clone-free, share it behind an `Arc`.
pub struct Appender {
    // LIMITATION: the queue is unbounded, so a writer slower than its callers grows memory;
    // callers (the gateway) bound their own concurrency instead of waiting on a full queue.
    sender: Option<mpsc::Sender<Request>>,
    worker: Option<thread::JoinHandle<Ledger>>,
}

impl Appender {
    /// Starts the writer thread that owns `ledger`.
    pub fn start(ledger: Ledger, config: AppenderConfig) -> Appender {
        let (sender, receiver) = mpsc::channel();
        let worker = thread::Builder::new()
            .name("ascribe-ledger-writer".into())
            .spawn(move || run_writer(ledger, receiver, config))
            .ok();
        Appender {
            sender: Some(sender),
            worker,
        }
    }

    /// Appends an entry and waits, without blocking the async runtime, until it is durable.
    pub async fn append(&self, pending: PendingEntry) -> Result<AppendedEntry, AppendError> {
        let receiver = self.submit(pending)?;
        receiver.await.unwrap_or(Err(AppendError::Stopped))
    }

    /// Appends entries in the order given and waits until each is durable. They are queued
    /// together and always share one commit: each may still be refused on its own by its
    /// check, but when that commit fails none of them is written, so an entry never lands
    /// without the ones it was handed over with (an observation without its inference).
    pub async fn append_all(
        &self,
        pendings: Vec<PendingEntry>,
    ) -> Vec<Result<AppendedEntry, AppendError>> {
        let n_entries = pendings.len();
        match self.submit_all(pendings) {
            Ok(receivers) => {
                let mut outcomes = Vec::with_capacity(n_entries);
                for receiver in receivers {
                    outcomes.push(receiver.await.unwrap_or(Err(AppendError::Stopped)));
                }
                outcomes
            }
            Err(error) => (0..n_entries).map(|_| Err(error.clone())).collect(),
        }
    }

    /// Appends an entry and blocks the calling thread until it is durable.
    pub fn append_blocking(&self, pending: PendingEntry) -> Result<AppendedEntry, AppendError> {
        let receiver = self.submit(pending)?;
        receiver
            .blocking_recv()
            .unwrap_or(Err(AppendError::Stopped))
    }

    fn submit(
        &self,
        pending: PendingEntry,
    ) -> Result<oneshot::Receiver<Result<AppendedEntry, AppendError>>, AppendError> {
        let mut receivers = self.submit_all(vec![pending])?;
        receivers.pop().ok_or(AppendError::Stopped)
    }

    fn submit_all(
        &self,
        pendings: Vec<PendingEntry>,
    ) -> Result<Vec<oneshot::Receiver<Result<AppendedEntry, AppendError>>>, AppendError> {
        let (items, receivers): (Vec<_>, Vec<_>) = pendings
            .into_iter()
            .map(|pending| {
                let (reply, receiver) = oneshot::channel();
                ((pending, reply), receiver)
            })
            .unzip();
        let sender = self.sender.as_ref().ok_or(AppendError::Stopped)?;
        sender
            .send(Request::Append(items))
            .map_err(|_| AppendError::Stopped)?;
        Ok(receivers)
    }

    /// Checks, on the writer thread and after the entries queued before it, that the ledger
    /// can be written now: one write transaction under the write lock that appends nothing
    /// ([`Ledger::check_writable`]). The check is queued when this is called, not when the
    /// future is first polled; dropping the future does not withdraw it, and the writer
    /// still reports its outcome to the [`CommitObserver`].
    pub fn check_writable(&self) -> impl Future<Output = Result<(), AppendError>> + use<> {
        let (reply, receiver) = oneshot::channel();
        let queued = match &self.sender {
            Some(sender) => sender
                .send(Request::Check(reply))
                .map_err(|_| AppendError::Stopped),
            None => Err(AppendError::Stopped),
        };
        async move {
            queued?;
            receiver.await.unwrap_or(Err(AppendError::Stopped))
        }
    }

    /// Stops accepting entries, commits what is queued, signs a final head and returns the
    /// ledger.
    pub fn shutdown(mut self) -> Option<Ledger> {
        self.sender.take();
        self.worker.take().and_then(|worker| worker.join().ok())
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn run_writer(
    mut ledger: Ledger,
    receiver: mpsc::Receiver<Request>,
    config: AppenderConfig,
) -> Ledger {
    let observer = config.observer.as_deref();
    let mut pending_check = None;
    loop {
        let first = match next_request(&receiver, config.idle_head_interval) {
            Waited::Request(Request::Append(items)) => items,
            Waited::Request(Request::Check(reply)) => {
                let _ = reply.send(check(&mut ledger, observer));
                continue;
            }
            Waited::Idle => {
                sign_if_needed(&mut ledger);
                continue;
            }
            Waited::Closed => break,
        };
        let mut n_entries = first.len();
        let mut batch = vec![first];
        while n_entries < config.max_batch.max(1) {
            match receiver.try_recv() {
                Ok(Request::Append(items)) => {
                    n_entries += items.len();
                    batch.push(items);
                }
                // A check waits for the batch queued before it, then ends the batch.
                Ok(Request::Check(reply)) => {
                    pending_check = Some(reply);
                    break;
                }
                Err(_) => break,
            }
        }
        commit(&mut ledger, batch, observer);
        if let Some(reply) = pending_check.take() {
            let _ = reply.send(check(&mut ledger, observer));
        }
    }
    sign_if_needed(&mut ledger);
    ledger
}

fn check(ledger: &mut Ledger, observer: Option<&dyn CommitObserver>) -> Result<(), AppendError> {
    let started = Instant::now();
    match ledger.check_writable() {
        Ok(()) => {
            if let Some(observer) = observer {
                observer.committed(0, started.elapsed());
            }
            Ok(())
        }
        Err(error) => {
            if let Some(observer) = observer {
                observer.failed(0, &error);
            }
            tracing::warn!(%error, "the ledger cannot be written");
            Err(AppendError::Store(error.to_string()))
        }
    }
}

enum Waited {
    Request(Request),
    Idle,
    Closed,
}

fn next_request(receiver: &mpsc::Receiver<Request>, idle: Option<Duration>) -> Waited {
    match idle {
        Some(interval) => match receiver.recv_timeout(interval) {
            Ok(request) => Waited::Request(request),
            Err(mpsc::RecvTimeoutError::Timeout) => Waited::Idle,
            Err(mpsc::RecvTimeoutError::Disconnected) => Waited::Closed,
        },
        None => receiver.recv().map_or(Waited::Closed, Waited::Request),
    }
}

fn sign_if_needed(ledger: &mut Ledger) {
    if !ledger.has_unsigned_entries() {
        return;
    }
    if let Err(error) = ledger.sign_tree_head() {
        tracing::error!(%error, "could not sign a tree head over the latest entries");
    }
}

/// Commits a batch; if it fails as a whole, retries each request's entries alone, so that
/// one entry whose projection fails does not take other callers' entries down with it,
/// while the entries one caller handed over together still stand or fall together.
fn commit(ledger: &mut Ledger, batch: Vec<Group>, observer: Option<&dyn CommitObserver>) {
    let sizes: Vec<usize> = batch.iter().map(Vec::len).collect();
    let (pendings, replies): (Vec<_>, Vec<_>) = batch.into_iter().flatten().unzip();
    let outcomes = match observed_append(ledger, &pendings, observer) {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(rejection_error))
            .collect(),
        Err(error) if sizes.len() > 1 => {
            let n_requests = sizes.len();
            tracing::warn!(%error, n_requests, "ledger batch failed; retrying each request alone");
            let mut outcomes = Vec::with_capacity(pendings.len());
            let mut rest = pendings.as_slice();
            for size in sizes {
                let (group, later) = rest.split_at(size);
                outcomes.extend(commit_alone(ledger, group, observer));
                rest = later;
            }
            outcomes
        }
        Err(error) => all_failed(&pendings, &error),
    };
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

/// Commits the entries of one request in a transaction of their own.
fn commit_alone(
    ledger: &mut Ledger,
    group: &[PendingEntry],
    observer: Option<&dyn CommitObserver>,
) -> Vec<Result<AppendedEntry, AppendError>> {
    match observed_append(ledger, group, observer) {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(rejection_error))
            .collect(),
        Err(error) => all_failed(group, &error),
    }
}

/// The same store error for every entry of a transaction that failed.
fn all_failed(
    pendings: &[PendingEntry],
    error: &StoreError,
) -> Vec<Result<AppendedEntry, AppendError>> {
    let error = store_error(error);
    pendings.iter().map(|_| Err(error.clone())).collect()
}

/// [`Ledger::append_batch`], reported to the observer.
fn observed_append(
    ledger: &mut Ledger,
    pendings: &[PendingEntry],
    observer: Option<&dyn CommitObserver>,
) -> Result<Vec<Result<AppendedEntry, Rejection>>, StoreError> {
    let started = Instant::now();
    let outcome = ledger.append_batch(pendings);
    if let Some(observer) = observer {
        match &outcome {
            Ok(_) => observer.committed(pendings.len(), started.elapsed()),
            Err(error) => observer.failed(pendings.len(), error),
        }
    }
    outcome
}

fn store_error(error: &StoreError) -> AppendError {
    tracing::error!(%error, "ledger entry could not be committed");
    AppendError::Store(error.to_string())
}

fn rejection_error(rejection: Rejection) -> AppendError {
    match rejection {
        Rejection::Refused(reason) => AppendError::Refused(reason),
        Rejection::Store(error) => AppendError::Store(error.to_string()),
    }
}
