//! The auditor's answers: which checkpoint made a decision, why it was there, and the proof.
//!
//! Every question of an audit is a function here that takes a store and returns a plain
//! serialisable answer; the CLI prints the answers, the gateway serves them under `/audit`, and
//! both render the same HTML views from [`html`]. The pieces:
//!
//! - [`inference`]: one inference or one decision, with its checkpoint's documents, the
//!   rotation that put that checkpoint behind the alias, observations around it, a receipt and
//!   an inclusion proof against the latest signed tree head.
//! - [`alias`]: what an alias resolved to at an instant, or over a window with the number of
//!   inferences each segment served, drift observations and the gaps when it did not exist.
//! - [`checkpoint`]: every period a checkpoint was in production, behind which aliases.
//! - [`search`]: inferences in a time window, by caller, alias or checkpoint, a page at a time.
//! - [`export`]: evidence packages for a window (JSONL with proofs, CSV, HTML), streamed.
//! - [`package`]: offline verification of a JSONL package with nothing but the public key.
//!
//! This crate only reads: it never appends to the ledger, never touches the network, and never
//! reads the clock. Time windows become `seq` ranges once (the writer never lets `time`
//! decrease along `seq`), so every query below is an index range scan on `seq`.

#![deny(missing_docs)]

pub mod alias;
pub mod checkpoint;
mod error;
pub mod export;
pub mod html;
pub mod inference;
pub mod package;
pub mod search;
mod window;

pub use error::AuditError;
pub use window::{parse_time, Window};
