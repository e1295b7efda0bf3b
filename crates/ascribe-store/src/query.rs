//! Reads of the ledger: entries, tree heads and proofs. Nothing here writes.

use ascribe_ledger::audit_trail::StoredHead;
use ascribe_ledger::merkle::{self, SubtreeSource};
use ascribe_ledger::{Frontier, Hash};

use crate::ledger::{read_leaf_hashes, read_meta, StoredEntry};
use crate::sql::{Backend, SqlValue, Tx};
use crate::tiles;
use crate::StoreError;

/// A signed tree head as stored, with the time it was signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeHeadRecord {
    /// The tree size and note text.
    pub head: StoredHead,
    /// When the writer signed it (RFC 3339).
    pub signed_at: String,
}

/// An inclusion proof for one entry in a tree of a given size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry's `seq`, its leaf index.
    pub index: u64,
    /// The size of the tree the proof is for.
    pub tree_size: u64,
    /// The entry's leaf hash.
    pub leaf_hash: Hash,
    /// The proof's hashes, deepest first (RFC 9162 order).
    pub proof: Vec<Hash>,
}

/// Runs a read transaction and returns what `work` produced.
pub fn read<T>(
    backend: &mut dyn Backend,
    mut work: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut result = None;
    backend.read(&mut |tx| {
        result = Some(work(tx)?);
        Ok(())
    })?;
    result.ok_or_else(|| StoreError::Inconsistent("read transaction produced nothing".into()))
}

/// Number of entries: one past the highest `seq`.
pub fn entry_count(backend: &mut dyn Backend) -> Result<u64, StoreError> {
    read(backend, |tx| count_in(tx))
}

fn count_in(tx: &mut dyn Tx) -> Result<u64, StoreError> {
    let row = tx.query_row(
        "SELECT seq FROM ledger_entries ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    row.map_or(Ok(0), |row| Ok(row[0].count("seq")? + 1))
}

/// Up to `limit` entry rows with `seq >= from`, in `seq` order.
pub fn entries(
    backend: &mut dyn Backend,
    from: u64,
    limit: u64,
) -> Result<Vec<StoredEntry>, StoreError> {
    read(backend, |tx| {
        let rows = tx.query(
            "SELECT seq, time, kind, actor, entry, leaf_hash FROM ledger_entries \
             WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[from.into(), limit.into()],
        )?;
        rows.iter().map(|row| stored_entry(row)).collect()
    })
}

fn stored_entry(row: &[SqlValue]) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        seq: row[0].count("seq")?,
        time: row[1].text("time")?.to_owned(),
        kind: row[2].text("kind")?.to_owned(),
        actor: row[3].text("actor")?.to_owned(),
        entry: row[4].text("entry")?.to_owned(),
        leaf_hash: row[5].hash("leaf_hash")?,
    })
}

/// Every stored signed tree head, smallest first.
pub fn tree_heads(backend: &mut dyn Backend) -> Result<Vec<TreeHeadRecord>, StoreError> {
    read(backend, |tx| {
        let rows = tx.query(
            "SELECT tree_size, note, signed_at FROM ledger_tree_heads ORDER BY tree_size",
            &[],
        )?;
        rows.iter().map(|row| tree_head_record(row)).collect()
    })
}

/// The largest signed tree head, if any.
pub fn latest_tree_head(backend: &mut dyn Backend) -> Result<Option<TreeHeadRecord>, StoreError> {
    read(backend, |tx| {
        let row = tx.query_row(
            "SELECT tree_size, note, signed_at FROM ledger_tree_heads \
             ORDER BY tree_size DESC LIMIT 1",
            &[],
        )?;
        row.map(|row| tree_head_record(&row)).transpose()
    })
}

fn tree_head_record(row: &[SqlValue]) -> Result<TreeHeadRecord, StoreError> {
    Ok(TreeHeadRecord {
        head: StoredHead {
            size: row[0].count("tree_size")?,
            note: row[1].text("note")?.to_owned(),
        },
        signed_at: row[2].text("signed_at")?.to_owned(),
    })
}

/// A value of the ledger's `ledger_meta` table (`origin`, `public_key`, `format`).
pub fn meta(backend: &mut dyn Backend, name: &str) -> Result<Option<String>, StoreError> {
    read(backend, |tx| read_meta(tx, name))
}

/// Proves that entry `index` is in the tree of `tree_size` entries.
pub fn inclusion_proof(
    backend: &mut dyn Backend,
    index: u64,
    tree_size: u64,
) -> Result<InclusionProof, StoreError> {
    read(backend, |tx| {
        check_size(tx, tree_size)?;
        let ranges = merkle::inclusion_proof_ranges(index, tree_size)?;
        let leaf_hash = read_leaf_hashes(tx, index, index + 1)?[0];
        let mut source = StoredLeaves(tx);
        let proof = ranges
            .into_iter()
            .map(|(start, end)| source.subtree_root(start, end))
            .collect::<Result<_, _>>()?;
        Ok(InclusionProof {
            index,
            tree_size,
            leaf_hash,
            proof,
        })
    })
}

/// Proves that the tree of `old_size` entries is a prefix of the tree of `new_size`.
pub fn consistency_proof(
    backend: &mut dyn Backend,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, StoreError> {
    read(backend, |tx| {
        check_size(tx, new_size)?;
        let ranges = merkle::consistency_proof_ranges(old_size, new_size)?;
        let mut source = StoredLeaves(tx);
        ranges
            .into_iter()
            .map(|(start, end)| source.subtree_root(start, end))
            .collect()
    })
}

/// The frontier of the tree of the first `tree_size` entries: its perfect-subtree roots,
/// largest first, read from tiles in O(log n) rows.
pub fn frontier_at(backend: &mut dyn Backend, tree_size: u64) -> Result<Frontier, StoreError> {
    read(backend, |tx| {
        check_size(tx, tree_size)?;
        Frontier::from_source(tree_size, &mut StoredLeaves(tx))
    })
}

/// The root of the first `tree_size` entries, recomputed from their stored leaf hashes.
pub fn root_at(backend: &mut dyn Backend, tree_size: u64) -> Result<Hash, StoreError> {
    read(backend, |tx| {
        check_size(tx, tree_size)?;
        if tree_size == 0 {
            return Ok(merkle::empty_root());
        }
        StoredLeaves(tx).subtree_root(0, tree_size)
    })
}

fn check_size(tx: &mut dyn Tx, tree_size: u64) -> Result<(), StoreError> {
    let size = count_in(tx)?;
    if tree_size > size {
        return Err(StoreError::TreeBeyondLedger {
            size: tree_size,
            entries: size,
        });
    }
    Ok(())
}

/// Hashes subtrees from stored tiles and leaf hashes: a perfect aligned subtree is read from
/// the highest tile level that covers it, anything else is split as RFC 9162 splits it.
struct StoredLeaves<'a>(&'a mut dyn Tx);

impl SubtreeSource for StoredLeaves<'_> {
    type Error = StoreError;

    fn subtree_root(&mut self, start: u64, end: u64) -> Result<Hash, StoreError> {
        let n_leaves = end - start;
        if n_leaves.is_power_of_two() && start % n_leaves == 0 {
            return tiles::perfect_subtree_root(self.0, start, n_leaves);
        }
        let split = 1u64 << (63 - (n_leaves - 1).leading_zeros());
        let left = self.subtree_root(start, start + split)?;
        let right = self.subtree_root(start + split, end)?;
        Ok(merkle::node_hash(&left, &right))
    }
}
