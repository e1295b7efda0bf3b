//! The registry: every checkpoint that ever served, how it is reached, and every time an
//! alias moved.
//!
//! Every change is a ledger entry (`checkpoint.registered`, `document.stored`,
//! `deployment.registered`, `alias.created`, `alias.rotated`); the `registry_*` tables are its
//! projection, written by [`RegistryProjection`] in the entry's own transaction. Each change
//! is built by a function of [`changes`] as a `PendingEntry` whose check runs under the
//! ledger's write lock, so two admins rotating one alias at once are serialised and neither
//! rotation is lost or based on a stale view.
//!
//! An alias's history is a list of *segments*: half-open intervals `[start, end)` of entry
//! time during which it pointed at one deployment. The segment that starts at the instant of
//! a rotation is the new one; see [`queries::resolve_at`].
//!
//! This crate never touches the network and never reads the clock: times come from entries.

#![deny(missing_docs)]

pub mod apply;
pub mod changes;
pub mod model;
mod projection;
pub mod queries;
mod schema;

pub use model::{
    AliasRecord, AnswerModel, CheckpointKind, CheckpointRecord, DeploymentRecord, Dialect,
    DocumentRecord, DocumentRef, DocumentRole, Evidence, MismatchPolicy, Retention, RotationKind,
    Segment,
};
pub use projection::RegistryProjection;
pub use schema::create_tables;

/// Why a registry read failed.
pub type Error = ascribe_store::StoreError;
