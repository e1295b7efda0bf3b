//! The ledger format of Ascribe, and nothing else.
//!
//! Ascribe records every registry change and every inference as an *entry* of an append-only
//! log. This crate fixes what those bytes are and how they are proven:
//!
//! - [`entry`]: an entry is RFC 8785 canonical JSON with `seq`, `time`, `kind`, `actor` and
//!   `body`; the same value always has the same bytes, so its hash is stable.
//! - [`merkle`]: the RFC 9162 Merkle tree over those bytes, with an O(log n) [`Frontier`] for
//!   appends, and inclusion and consistency proofs with their verifiers.
//! - [`note`]: tree heads signed with Ed25519 in the C2SP signed-note checkpoint form, and
//!   the key formats that go with them.
//! - [`audit_trail`]: a streaming check of a whole ledger (entries in `seq` order plus the
//!   stored signed tree heads) that names the first entry that is not what it should be.
//!
//! The one design decision to know: the bytes of an entry are the record. Everything a store
//! keeps beside them (leaf hashes, indexed columns, projections) is derived and is re-derived
//! by the verifier, so a changed row is always found.
//!
//! This crate never touches the network, the file system or the clock. Callers pass time in
//! and bring the bytes; the stores live in `ascribe-store`.

#![deny(missing_docs)]

pub mod audit_trail;
pub mod entry;
pub mod merkle;
pub mod note;

pub use audit_trail::{AuditTrail, TrailFailure, TrailSummary};
pub use entry::{CanonicalBody, Entry, EntryError, Timestamp};
pub use merkle::{Frontier, Hash, ProofError};
pub use note::{KeyError, NoteError, NoteSigner, NoteVerifier, SignedTreeHead, TreeHead};
