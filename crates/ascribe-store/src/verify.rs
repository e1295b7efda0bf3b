//! `ascribe verify`: recompute the whole ledger and compare it with what is stored and signed.

use ascribe_ledger::audit_trail::{AuditTrail, TrailFailure};
use ascribe_ledger::NoteVerifier;
use serde::Serialize;

use crate::query::{self, TreeHeadRecord};
use crate::sql::Backend;
use crate::StoreError;

/// Entries read per query while verifying.
const PAGE: u64 = 10_000;

/// The outcome of a verification; its JSON form is a stable contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether every check passed.
    pub ok: bool,
    /// Entries read and found valid before the first failure (all of them when `ok`).
    pub entries: u64,
    /// Size of the recomputed tree.
    pub tree_size: u64,
    /// Recomputed root, lowercase hex; `null` when verification failed.
    pub root: Option<String>,
    /// Signed tree heads checked against the recomputed roots.
    pub heads_checked: u64,
    /// The first `seq` found missing, changed or uncovered; `null` when `ok` or when the
    /// fault is in a tree head rather than an entry.
    pub first_bad_seq: Option<u64>,
    /// What differs, in words.
    pub error: Option<String>,
}

/// Verifies the whole ledger against the trusted public key.
///
/// `progress` is called with (entries done, entries expected) after each page. A database
/// that cannot be read is an `Err`; a ledger that fails a check is an `Ok` report with
/// `ok: false`.
pub fn verify_ledger(
    backend: &mut dyn Backend,
    trusted: &NoteVerifier,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, StoreError> {
    let expected = query::entry_count(backend)?;
    let heads = query::tree_heads(backend)?;
    if let Some(failure) = check_public_key(backend, trusted)? {
        return Ok(failed(0, failure));
    }
    let mut trail = AuditTrail::new(
        trusted.clone(),
        heads
            .into_iter()
            .map(|record: TreeHeadRecord| record.head)
            .collect(),
    );
    let mut next = 0;
    loop {
        let page = query::entries(backend, next, PAGE)?;
        let Some(last) = page.last() else { break };
        let page_end = last.seq + 1;
        for row in &page {
            let entry = match trail.push(row.seq, row.entry.as_bytes(), Some(&row.leaf_hash)) {
                Ok(entry) => entry,
                Err(failure) => return Ok(failed(row.seq.min(next), failure)),
            };
            let columns_match = row.time == entry.time.to_string()
                && row.kind == entry.kind
                && row.actor == entry.actor;
            if !columns_match {
                let failure = TrailFailure {
                    first_bad_seq: Some(row.seq),
                    reason: format!(
                        "entry seq {}: indexed columns (time, kind, actor) differ from the entry",
                        row.seq
                    ),
                };
                return Ok(failed(row.seq, failure));
            }
            next = row.seq + 1;
        }
        next = next.max(page_end);
        progress(next, expected);
    }
    match trail.finish() {
        Ok(summary) => Ok(VerifyReport {
            ok: true,
            entries: summary.entries,
            tree_size: summary.tree_size,
            root: Some(hex::encode(summary.root)),
            heads_checked: summary.heads_checked,
            first_bad_seq: None,
            error: None,
        }),
        Err(failure) => Ok(failed(next, failure)),
    }
}

fn check_public_key(
    backend: &mut dyn Backend,
    trusted: &NoteVerifier,
) -> Result<Option<TrailFailure>, StoreError> {
    let stored = query::meta(backend, "public_key")?;
    let trusted_text = trusted.public_key_text();
    Ok(match stored {
        Some(stored) if stored == trusted_text => None,
        stored => Some(TrailFailure {
            first_bad_seq: None,
            reason: format!(
                "the ledger names public key `{}` but the trusted key is `{trusted_text}`",
                stored.unwrap_or_default()
            ),
        }),
    })
}

fn failed(entries_good: u64, failure: TrailFailure) -> VerifyReport {
    let entries = failure.first_bad_seq.unwrap_or(entries_good);
    VerifyReport {
        ok: false,
        entries,
        tree_size: entries,
        root: None,
        heads_checked: 0,
        first_bad_seq: failure.first_bad_seq,
        error: Some(failure.reason),
    }
}
