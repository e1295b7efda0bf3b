//! The ledger writer: one transaction per batch, entries and projections together.

use std::time::Duration;

use ascribe_ledger::merkle;
use ascribe_ledger::{
    CanonicalBody, Entry, EntryError, Frontier, Hash, NoteSigner, SignedTreeHead, Timestamp,
    TreeHead,
};
use serde_json::Value;

use crate::sql::{Backend, SqlValue, Tx};
use crate::tiles::{self, TileBuilder};
use crate::StoreError;

/// Where entry times come from.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(chrono_now())
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// An entry waiting to be appended: everything but `seq` and `time`, which the writer
/// assigns under the write lock.
pub struct PendingEntry {
    /// The entry kind, such as `key.created`.
    pub kind: String,
    /// Who asks for the entry.
    pub actor: String,
    /// The body, or a check that produces it from the current state.
    pub body: EntryBody,
}

impl PendingEntry {
    /// An entry whose body is known in advance. The body is serialised here, on the
    /// caller's thread, so that the writer does not spend its lock on it; a body that is not
    /// a JSON object is refused when the entry is appended.
    pub fn new(kind: &str, actor: &str, body: Value) -> PendingEntry {
        PendingEntry {
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            body: EntryBody::Ready(CanonicalBody::new(body)),
        }
    }

    /// An entry whose body is computed inside the write transaction, after every earlier
    /// entry of the batch was projected; the check may refuse the entry.
    pub fn checked<F>(kind: &str, actor: &str, check: F) -> PendingEntry
    where
        F: Fn(&mut dyn Tx) -> Result<Value, Rejection> + Send + 'static,
    {
        PendingEntry {
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            body: EntryBody::Checked(Box::new(check)),
        }
    }
}

/// A pending entry's body.
pub enum EntryBody {
    /// A body fixed by the caller, already serialised (or the reason it could not be).
    Ready(Result<CanonicalBody, EntryError>),
    /// A body computed (or refused) under the write lock from projected state. Checks read
    /// projection tables only: entries of the same batch are not yet in `ledger_entries`.
    Checked(Box<EntryCheck>),
}

/// The check of an [`EntryBody::Checked`] body.
pub type EntryCheck = dyn Fn(&mut dyn Tx) -> Result<Value, Rejection> + Send;

/// Why a checked entry was not appended.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The check refused the entry; nothing was written for it.
    #[error("{0}")]
    Refused(String),
    /// The check could not read the state it needs.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keeps a queryable table in step with the entries, in the entry's own transaction.
pub trait Projection: Send {
    /// Applies one appended entry.
    fn project(&self, tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError>;
}

/// An entry that is durable in the ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendedEntry {
    /// The entry as written.
    pub entry: Entry,
    /// Its leaf hash.
    pub leaf_hash: Hash,
}

/// An entry row as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEntry {
    /// The row's `seq` column.
    pub seq: u64,
    /// The row's indexed `time` column.
    pub time: String,
    /// The row's indexed `kind` column.
    pub kind: String,
    /// The row's indexed `actor` column.
    pub actor: String,
    /// The canonical entry text: the record itself.
    pub entry: String,
    /// The stored leaf hash.
    pub leaf_hash: Hash,
}

/// When the writer signs a new tree head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeHeadPolicy {
    /// After every batch: what one-shot commands use, so their entries are covered at once.
    EveryBatch,
    /// When the last head is at least this old (the gateway signs about once a second).
    Interval(Duration),
}

/// The writer's view of the tree, kept between batches so appends stay O(log n).
#[derive(Clone, Debug)]
struct WriterState {
    frontier: Frontier,
    /// The incomplete tiles at the right edge; `None` until loaded in a transaction.
    tiles: Option<TileBuilder>,
    last_time: Option<Timestamp>,
    last_head_size: u64,
    last_head_time: Option<Timestamp>,
}

/// Appends entries to a ledger; only one `Ledger` per process should write.
pub struct Ledger {
    backend: Box<dyn Backend>,
    signer: NoteSigner,
    clock: Box<dyn Clock>,
    projections: Vec<Box<dyn Projection>>,
    policy: TreeHeadPolicy,
    state: Option<WriterState>,
}

const SELECT_LAST_ENTRY: &str = "SELECT seq, time FROM ledger_entries ORDER BY seq DESC LIMIT 1";
const SELECT_LATEST_HEAD: &str =
    "SELECT tree_size, signed_at, note FROM ledger_tree_heads ORDER BY tree_size DESC LIMIT 1";

/// The table [`Ledger::check_writable`] stamps; created on first use, so that ledgers made
/// before it existed need no migration.
const CREATE_WRITE_CHECKS: &str = "CREATE TABLE IF NOT EXISTS ledger_write_checks \
     (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL)";
const STAMP_WRITE_CHECK: &str = "INSERT INTO ledger_write_checks (id, checked_at) VALUES (1, $1) \
     ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at";

impl Ledger {
    /// Creates the schema if needed and records the ledger's origin and public key, refusing
    /// a database that already belongs to another key.
    pub fn init(backend: &mut dyn Backend, signer: &NoteSigner) -> Result<(), StoreError> {
        backend.create_schema()?;
        let public_key = signer.verifier().public_key_text();
        backend.write(&mut |tx| {
            let existing = read_meta(tx, "public_key")?;
            match existing {
                Some(existing) if existing != public_key => Err(StoreError::Inconsistent(format!(
                    "this database already holds a ledger signed by `{existing}`"
                ))),
                Some(_) => Ok(()),
                None => {
                    let insert = "INSERT INTO ledger_meta (name, value) VALUES ($1, $2)";
                    tx.execute(insert, &["origin".into(), signer.name().into()])?;
                    tx.execute(insert, &["public_key".into(), public_key.clone().into()])?;
                    tx.execute(insert, &["format".into(), "ascribe-ledger/1".into()])?;
                    Ok(())
                }
            }
        })
    }

    /// Opens a writer over an initialised ledger.
    pub fn open(
        mut backend: Box<dyn Backend>,
        signer: NoteSigner,
        clock: Box<dyn Clock>,
        policy: TreeHeadPolicy,
    ) -> Result<Ledger, StoreError> {
        let mut origin = None;
        let description = backend.describe();
        backend
            .read(&mut |tx| {
                origin = read_meta(tx, "origin")?;
                Ok(())
            })
            .map_err(|_| StoreError::NotInitialised(description.clone()))?;
        match origin {
            None => return Err(StoreError::NotInitialised(description)),
            Some(origin) if origin != signer.name() => {
                return Err(StoreError::Inconsistent(format!(
                    "ledger origin `{origin}` does not match signing key `{}`",
                    signer.name()
                )))
            }
            Some(_) => {}
        }
        Ok(Ledger {
            backend,
            signer,
            clock,
            projections: Vec::new(),
            policy,
            state: None,
        })
    }

    /// Registers a projection applied to every entry appended from now on.
    pub fn add_projection(&mut self, projection: Box<dyn Projection>) {
        self.projections.push(projection);
    }

    /// The backend, for reads.
    pub fn backend(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// Appends a batch in one transaction. The outer error means nothing of the batch was
    /// written; an inner `Err` is one entry refused by its check while the rest were written.
    pub fn append_batch(
        &mut self,
        batch: &[PendingEntry],
    ) -> Result<Vec<Result<AppendedEntry, Rejection>>, StoreError> {
        let cached = self.state.clone();
        let mut committed_state = None;
        let mut outcomes = Vec::new();
        let (signer, clock, projections, policy) = (
            &self.signer,
            self.clock.as_ref(),
            &self.projections,
            self.policy,
        );
        self.backend.write(&mut |tx| {
            let mut state = sync_state(tx, cached.clone())?;
            outcomes = append_in_tx(tx, &mut state, batch, clock, projections)?;
            if head_due(&state, policy, clock.now()) {
                sign_head(tx, &mut state, signer, clock.now())?;
            }
            save_frontier(tx, &state)?;
            committed_state = Some(state);
            Ok(())
        })?;
        self.state = committed_state;
        Ok(outcomes)
    }

    /// Signs a tree head over everything appended so far, unless the latest head already
    /// covers it. Returns the head that now covers the whole ledger.
    pub fn sign_tree_head(&mut self) -> Result<Option<SignedTreeHead>, StoreError> {
        let cached = self.state.clone();
        let mut committed_state = None;
        let mut signed = None;
        let (signer, clock) = (&self.signer, self.clock.as_ref());
        self.backend.write(&mut |tx| {
            let mut state = sync_state(tx, cached.clone())?;
            // Never over the empty tree: the audit trail checks a head only once an entry was
            // read, so a head at size 0 would fail every later verification.
            if state.frontier.size() > state.last_head_size {
                signed = Some(sign_head(tx, &mut state, signer, clock.now())?);
                save_frontier(tx, &state)?;
            }
            committed_state = Some(state);
            Ok(())
        })?;
        self.state = committed_state;
        Ok(signed)
    }

    /// Checks that the ledger can be written now, without appending anything: one write
    /// transaction that takes the write lock, catches up with what other writers appended,
    /// and stamps the time in `ledger_write_checks`, a one-row table outside the ledger that
    /// verification never reads. A full disk, a read-only file or database, a lock held too
    /// long or a lost connection fail it as they would fail an append.
    pub fn check_writable(&mut self) -> Result<(), StoreError> {
        let cached = self.state.clone();
        let mut committed_state = None;
        let checked_at = self.clock.now().to_string();
        self.backend.write(&mut |tx| {
            let state = sync_state(tx, cached.clone())?;
            tx.execute(CREATE_WRITE_CHECKS, &[])?;
            tx.execute(STAMP_WRITE_CHECK, &[checked_at.clone().into()])?;
            committed_state = Some(state);
            Ok(())
        })?;
        self.state = committed_state;
        Ok(())
    }

    /// Whether entries exist that no signed tree head covers yet, as last seen by this writer.
    pub fn has_unsigned_entries(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|state| state.frontier.size() > state.last_head_size)
    }
}

/// Brings the writer's state up to date with what is committed, in O(log n) plus the rows
/// other writers appended since this one last wrote.
fn sync_state(tx: &mut dyn Tx, cached: Option<WriterState>) -> Result<WriterState, StoreError> {
    let (size, last_time) = match tx.query_row(SELECT_LAST_ENTRY, &[])? {
        Some(row) => (row[0].count("seq")? + 1, Some(parse_time(&row[1])?)),
        None => (0, None),
    };
    let mut state = match cached {
        Some(state) if state.frontier.size() <= size => state,
        _ => load_frontier(tx, size)?,
    };
    if state.frontier.size() > size {
        return Err(StoreError::Inconsistent(format!(
            "ledger has {size} entries but {} were written before",
            state.frontier.size()
        )));
    }
    let caught_up = read_leaf_hashes(tx, state.frontier.size(), size)?;
    for leaf in &caught_up {
        state.frontier.push(*leaf);
    }
    // Other writers stored the tiles their entries completed; start from what is stored.
    if !caught_up.is_empty() || state.tiles.is_none() {
        state.tiles = Some(TileBuilder::load(tx, size)?);
    }
    state.last_time = last_time;
    if let Some(row) = tx.query_row(SELECT_LATEST_HEAD, &[])? {
        state.last_head_size = row[0].count("tree_size")?;
        state.last_head_time = Some(parse_time(&row[1])?);
    }
    Ok(state)
}

/// Reads the cached frontier, falling back to an empty tree when the cache is missing or
/// ahead of the entries (the caller then replays the leaf hashes).
fn load_frontier(tx: &mut dyn Tx, size: u64) -> Result<WriterState, StoreError> {
    let empty = WriterState {
        frontier: Frontier::new(),
        tiles: None,
        last_time: None,
        last_head_size: 0,
        last_head_time: None,
    };
    let Some(row) = tx.query_row(
        "SELECT tree_size, nodes FROM ledger_frontier WHERE id = 1",
        &[],
    )?
    else {
        return Ok(empty);
    };
    let cached_size = row[0].count("ledger_frontier.tree_size")?;
    let nodes = row[1].blob("ledger_frontier.nodes")?;
    let hashes: Vec<Hash> = nodes
        .chunks_exact(32)
        .filter_map(|c| Hash::try_from(c).ok())
        .collect();
    match Frontier::from_parts(cached_size, hashes) {
        Some(frontier) if cached_size <= size => Ok(WriterState { frontier, ..empty }),
        _ => Ok(empty),
    }
}

fn save_frontier(tx: &mut dyn Tx, state: &WriterState) -> Result<(), StoreError> {
    let nodes: Vec<u8> = state.frontier.nodes().concat();
    tx.execute(
        "INSERT INTO ledger_frontier (id, tree_size, nodes, last_time) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, nodes = excluded.nodes, \
         last_time = excluded.last_time",
        &[
            state.frontier.size().into(),
            nodes.into(),
            state.last_time.map(|time| time.to_string()).into(),
        ],
    )?;
    Ok(())
}

/// Runs each pending entry's check, assigns `seq` and `time`, projects, and inserts the rows.
fn append_in_tx(
    tx: &mut dyn Tx,
    state: &mut WriterState,
    batch: &[PendingEntry],
    clock: &dyn Clock,
    projections: &[Box<dyn Projection>],
) -> Result<Vec<Result<AppendedEntry, Rejection>>, StoreError> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut rows = Vec::with_capacity(batch.len());
    let mut completed_tiles = Vec::new();
    let mut tiles = state.tiles.take().unwrap_or_default();
    for pending in batch {
        let now = clock.now();
        let time = state.last_time.map_or(now, |last| last.max(now));
        let seq = state.frontier.size();
        let (kind, actor) = (&pending.kind, &pending.actor);
        let encoded = match &pending.body {
            EntryBody::Ready(Ok(body)) => Entry::with_canonical_body(seq, time, kind, actor, body),
            EntryBody::Ready(Err(error)) => Err(error.clone()),
            EntryBody::Checked(check) => match check(tx) {
                Ok(body) => encode(seq, time, pending, body),
                Err(Rejection::Store(error)) => return Err(error),
                Err(refused) => {
                    outcomes.push(Err(refused));
                    continue;
                }
            },
        };
        let (entry, bytes) = match encoded {
            Ok(encoded) => encoded,
            Err(error) => {
                outcomes.push(Err(Rejection::Refused(error.to_string())));
                continue;
            }
        };
        for projection in projections {
            projection.project(tx, &entry)?;
        }
        let leaf_hash = merkle::leaf_hash(&bytes);
        state.frontier.push(leaf_hash);
        tiles.push(leaf_hash, state.frontier.size(), &mut completed_tiles);
        state.last_time = Some(time);
        rows.push(Row {
            seq,
            time,
            kind,
            actor,
            bytes,
            leaf_hash,
        });
        outcomes.push(Ok(AppendedEntry { entry, leaf_hash }));
    }
    insert_entries(tx, &rows)?;
    tiles::insert(tx, &completed_tiles)?;
    state.tiles = Some(tiles);
    Ok(outcomes)
}

/// An entry whose body a check computed under the lock, and its canonical bytes.
fn encode(
    seq: u64,
    time: Timestamp,
    pending: &PendingEntry,
    body: Value,
) -> Result<(Entry, Vec<u8>), EntryError> {
    let entry = Entry {
        seq,
        time,
        kind: pending.kind.clone(),
        actor: pending.actor.clone(),
        body,
    };
    let bytes = entry.to_canonical_bytes()?;
    Ok((entry, bytes))
}

/// An entry's row in `ledger_entries`: its columns, borrowed from the pending entry where
/// they can be, so the body is not copied once more for the insert.
struct Row<'a> {
    seq: u64,
    time: Timestamp,
    kind: &'a str,
    actor: &'a str,
    bytes: Vec<u8>,
    leaf_hash: Hash,
}

/// Rows per INSERT statement; keeps parameter counts far below both databases' limits.
const ROWS_PER_INSERT: usize = 500;

fn insert_entries(tx: &mut dyn Tx, rows: &[Row<'_>]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO ledger_entries (seq, time, kind, actor, entry, leaf_hash) VALUES ",
        );
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for (index, row) in chunk.iter().enumerate() {
            let n = index * 6;
            if index > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6
            ));
            params.push(row.seq.into());
            params.push(row.time.to_string().into());
            params.push(row.kind.into());
            params.push(row.actor.into());
            // Canonical JSON is UTF-8 by construction (RFC 8785 output is a JSON text).
            params.push(SqlValue::Text(
                String::from_utf8_lossy(&row.bytes).into_owned(),
            ));
            params.push(row.leaf_hash.to_vec().into());
        }
        tx.execute(&sql, &params)?;
    }
    Ok(())
}

fn head_due(state: &WriterState, policy: TreeHeadPolicy, now: Timestamp) -> bool {
    // A batch whose entries were all refused leaves an empty ledger empty: nothing to sign
    // (a head at size 0 would fail every later verification).
    if state.frontier.size() <= state.last_head_size {
        return false;
    }
    match (policy, state.last_head_time) {
        (TreeHeadPolicy::EveryBatch, _) | (_, None) => true,
        (TreeHeadPolicy::Interval(interval), Some(last)) => {
            let elapsed = now.unix_micros().saturating_sub(last.unix_micros());
            elapsed >= i64::try_from(interval.as_micros()).unwrap_or(i64::MAX)
        }
    }
}

fn sign_head(
    tx: &mut dyn Tx,
    state: &mut WriterState,
    signer: &NoteSigner,
    now: Timestamp,
) -> Result<SignedTreeHead, StoreError> {
    let head = TreeHead {
        origin: signer.name().to_owned(),
        size: state.frontier.size(),
        root: state.frontier.root(),
    };
    let signed = signer.sign_tree_head(&head);
    tx.execute(
        "INSERT INTO ledger_tree_heads (tree_size, root, signed_at, note) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tree_size) DO NOTHING",
        &[
            head.size.into(),
            head.root.to_vec().into(),
            now.to_string().into(),
            signed.note.clone().into(),
        ],
    )?;
    state.last_head_size = head.size;
    state.last_head_time = Some(now);
    tracing::debug!(tree_size = head.size, root = %hex::encode(head.root), "tree head signed");
    Ok(signed)
}

pub(crate) fn read_meta(tx: &mut dyn Tx, name: &str) -> Result<Option<String>, StoreError> {
    let row = tx.query_row(
        "SELECT value FROM ledger_meta WHERE name = $1",
        &[name.into()],
    )?;
    row.map(|row| row[0].text("ledger_meta.value").map(str::to_owned))
        .transpose()
}

/// Pages of leaf hashes read at once.
const LEAF_PAGE: u64 = 65_536;

/// Reads the stored leaf hashes of `seq` in `[start, end)`, failing on any gap.
pub(crate) fn read_leaf_hashes(
    tx: &mut dyn Tx,
    start: u64,
    end: u64,
) -> Result<Vec<Hash>, StoreError> {
    let mut leaves = Vec::with_capacity(end.saturating_sub(start).min(LEAF_PAGE) as usize);
    let mut next = start;
    while next < end {
        let page_end = end.min(next + LEAF_PAGE);
        let rows = tx.query(
            "SELECT seq, leaf_hash FROM ledger_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq",
            &[next.into(), page_end.into()],
        )?;
        for row in rows {
            if row[0].count("seq")? != next {
                return Err(StoreError::Inconsistent(format!(
                    "entry seq {next} is missing"
                )));
            }
            leaves.push(row[1].hash("leaf_hash")?);
            next += 1;
        }
        if next < page_end {
            return Err(StoreError::Inconsistent(format!(
                "entry seq {next} is missing"
            )));
        }
    }
    Ok(leaves)
}

fn parse_time(value: &SqlValue) -> Result<Timestamp, StoreError> {
    let text = value.text("time")?;
    Timestamp::parse(text).map_err(|problem| StoreError::Column {
        column: "time".into(),
        problem,
    })
}
