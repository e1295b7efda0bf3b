//! Group commit: many callers, one writer thread, one transaction per batch.
//!
//! Callers send a [`PendingEntry`] and wait on a reply. The writer thread takes the first
//! waiting entry, drains whatever else queued up while the previous batch was being made
//! durable (up to [`AppenderConfig::max_batch`]), and commits them together. A caller hears
//! back only after the commit that holds its entry returned, so an acknowledged entry is
//! always durable; entries are numbered in the order the writer takes them.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::ledger::{AppendedEntry, Ledger, PendingEntry, Rejection};

/// Tuning of the writer thread.
#[derive(Clone, Copy, Debug)]
pub struct AppenderConfig {
    /// Most entries committed in one transaction.
    pub max_batch: usize,
    /// How long the writer waits idle before signing a head over unsigned entries; `None`
    /// signs only as the ledger's [`crate::TreeHeadPolicy`] says, plus once at shutdown.
    pub idle_head_interval: Option<Duration>,
}

impl Default for AppenderConfig {
    fn default() -> AppenderConfig {
        AppenderConfig {
            max_batch: 1024,
            idle_head_interval: Some(Duration::from_secs(1)),
        }
    }
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

/// Entries handed over together, each with the channel its caller waits on; the writer
/// never splits one request between two batches.
struct Request {
    items: Vec<(PendingEntry, Reply)>,
}

type Reply = oneshot::Sender<Result<AppendedEntry, AppendError>>;

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
    /// together, so they are numbered consecutively and usually share one commit; each may
    /// still be refused on its own by its check.
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
            .send(Request { items })
            .map_err(|_| AppendError::Stopped)?;
        Ok(receivers)
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
    loop {
        let first = match next_request(&receiver, config.idle_head_interval) {
            Waited::Request(request) => request,
            Waited::Idle => {
                sign_if_needed(&mut ledger);
                continue;
            }
            Waited::Closed => break,
        };
        let mut batch = first.items;
        while batch.len() < config.max_batch.max(1) {
            match receiver.try_recv() {
                Ok(request) => batch.extend(request.items),
                Err(_) => break,
            }
        }
        commit(&mut ledger, batch);
    }
    sign_if_needed(&mut ledger);
    ledger
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

/// Commits a batch; if it fails as a whole, retries each entry alone so that one entry whose
/// projection fails does not take its neighbours down with it.
fn commit(ledger: &mut Ledger, batch: Vec<(PendingEntry, Reply)>) {
    let (pendings, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    let outcomes = match ledger.append_batch(&pendings) {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(rejection_error))
            .collect(),
        Err(error) if pendings.len() > 1 => {
            let n_entries = pendings.len();
            tracing::warn!(%error, n_entries, "ledger batch failed; retrying alone");
            pendings
                .chunks(1)
                .map(|single| commit_alone(ledger, single))
                .collect()
        }
        Err(error) => vec![Err(store_error(&error))],
    };
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

fn commit_alone(
    ledger: &mut Ledger,
    single: &[PendingEntry],
) -> Result<AppendedEntry, AppendError> {
    match ledger.append_batch(single) {
        Ok(mut outcomes) => outcomes
            .pop()
            .unwrap_or(Err(Rejection::Refused("no outcome".into())))
            .map_err(rejection_error),
        Err(error) => Err(store_error(&error)),
    }
}

fn store_error(error: &crate::StoreError) -> AppendError {
    tracing::error!(%error, "ledger entry could not be committed");
    AppendError::Store(error.to_string())
}

fn rejection_error(rejection: Rejection) -> AppendError {
    match rejection {
        Rejection::Refused(reason) => AppendError::Refused(reason),
        Rejection::Store(error) => AppendError::Store(error.to_string()),
    }
}
