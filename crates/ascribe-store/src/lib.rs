//! Where Ascribe's ledger lives: SQLite or PostgreSQL, behind one interface.
//!
//! - [`Backend`] is the small transactional surface the two databases share; every query is
//!   written once, in SQL both understand, over [`Tx`].
//! - [`Ledger`] is the single writer logic: under the database's write lock it catches up
//!   with rows other processes appended, assigns `seq` and `time`, canonicalises and hashes
//!   each entry, writes it with the projections registered for it, and signs a tree head, all
//!   in one transaction.
//! - [`Appender`] is group commit: callers on many threads or tasks hand entries to one
//!   writer thread, which commits whatever has queued up as one batch and acknowledges each
//!   caller only once that batch is durable.
//! - [`verify_ledger`] streams the whole ledger through `ascribe_ledger::AuditTrail`.
//!
//! The design decision to know: the database refuses UPDATE and DELETE on entries and tree
//! heads (triggers), and nothing here trusts what it did not recompute. Indexed columns,
//! stored leaf hashes and the cached frontier are conveniences that verification re-derives.
//!
//! This crate reads the clock only through [`Clock`], so tests choose time.

#![deny(missing_docs)]

mod appender;
mod error;
mod home;
mod ledger;
mod postgres;
pub mod query;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod tiles;
mod verify;

pub use appender::{AppendError, Appender, AppenderConfig, CommitObserver};
pub use error::StoreError;
pub use home::{open_backend, open_backend_with_lock_timeout, DatabaseLocation, SigningKeyFiles};
pub use ledger::{
    AppendedEntry, Clock, EntryBody, Ledger, PendingEntry, Projection, Rejection, StoredEntry,
    SystemClock, TreeHeadPolicy,
};
pub use postgres::PostgresBackend;
pub use sql::{Backend, SqlValue, Tx};
pub use sqlite::SqliteBackend;
pub use verify::{verify_ledger, VerifyReport};
