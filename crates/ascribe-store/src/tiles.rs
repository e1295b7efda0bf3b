//! Stored roots of complete 256-leaf and 65536-leaf subtrees, so that a proof reads O(log n)
//! rows instead of every leaf hash under it.
//!
//! A *tile* at level `L` and index `i` is the root of the perfect subtree over leaves
//! `[i * 2^L, (i + 1) * 2^L)`. The writer inserts each tile in the transaction of the entry
//! that completes it. Tiles are derived data: a proof built from a wrong tile fails to verify
//! against the signed root, and a missing tile only makes a proof slower (it falls back to the
//! level below).

use ascribe_ledger::merkle::root_of;
use ascribe_ledger::{Frontier, Hash};

use crate::ledger::read_leaf_hashes;
use crate::sql::Tx;
use crate::StoreError;

/// The tile levels kept, lowest first: 2^8 and 2^16 leaves.
pub(crate) const LEVELS: [u32; 2] = [8, 16];

/// Children per tile at every level.
const WIDTH: u64 = 256;

/// A tile completed by an append, waiting to be inserted.
pub(crate) type NewTile = (u32, u64, Hash);

/// The incomplete tiles at the right edge of the tree.
#[derive(Clone, Debug, Default)]
pub(crate) struct TileBuilder {
    /// Leaf hashes of the incomplete level-8 tile.
    leaves: Frontier,
    /// Level-8 roots of the incomplete level-16 tile.
    level8_roots: Frontier,
}

impl TileBuilder {
    /// Rebuilds the incomplete tiles of a tree of `size` leaves from stored rows (at most 255
    /// leaf hashes and 255 tiles).
    pub(crate) fn load(tx: &mut dyn Tx, size: u64) -> Result<TileBuilder, StoreError> {
        let mut builder = TileBuilder::default();
        for leaf in read_leaf_hashes(tx, size - size % WIDTH, size)? {
            builder.leaves.push(leaf);
        }
        let n_level8 = size / WIDTH;
        let first = n_level8 - n_level8 % WIDTH;
        for root in tiles_or_leaves(tx, 8, first, n_level8)? {
            builder.level8_roots.push(root);
        }
        Ok(builder)
    }

    /// Adds the leaf that makes the tree `size_after` leaves long; completed tiles are pushed
    /// onto `completed`.
    pub(crate) fn push(&mut self, leaf: Hash, size_after: u64, completed: &mut Vec<NewTile>) {
        self.leaves.push(leaf);
        if self.leaves.size() < WIDTH {
            return;
        }
        let level8 = self.leaves.root();
        self.leaves = Frontier::new();
        completed.push((8, size_after / WIDTH - 1, level8));
        self.level8_roots.push(level8);
        if self.level8_roots.size() < WIDTH {
            return;
        }
        let level16 = self.level8_roots.root();
        self.level8_roots = Frontier::new();
        completed.push((16, size_after / (WIDTH * WIDTH) - 1, level16));
    }
}

/// Inserts completed tiles; a tile another writer already inserted is left as it is.
pub(crate) fn insert(tx: &mut dyn Tx, tiles: &[NewTile]) -> Result<(), StoreError> {
    for (level, index, hash) in tiles {
        tx.execute(
            "INSERT INTO ledger_subtrees (level, idx, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (level, idx) DO NOTHING",
            &[
                i64::from(*level).into(),
                (*index).into(),
                hash.to_vec().into(),
            ],
        )?;
    }
    Ok(())
}

/// The stored tiles `[first, end)` of `level`, or `None` when any is missing.
pub(crate) fn read(
    tx: &mut dyn Tx,
    level: u32,
    first: u64,
    end: u64,
) -> Result<Option<Vec<Hash>>, StoreError> {
    let rows = tx.query(
        "SELECT hash FROM ledger_subtrees WHERE level = $1 AND idx >= $2 AND idx < $3 \
         ORDER BY idx",
        &[i64::from(level).into(), first.into(), end.into()],
    )?;
    if rows.len() as u64 != end - first {
        return Ok(None);
    }
    rows.iter()
        .map(|row| row[0].hash("ledger_subtrees.hash"))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Tiles `[first, end)` of `level`, recomputed from leaves where they are not stored.
fn tiles_or_leaves(
    tx: &mut dyn Tx,
    level: u32,
    first: u64,
    end: u64,
) -> Result<Vec<Hash>, StoreError> {
    if let Some(tiles) = read(tx, level, first, end)? {
        return Ok(tiles);
    }
    let width = 1u64 << level;
    (first..end)
        .map(|index| {
            Ok(root_of(&read_leaf_hashes(
                tx,
                index * width,
                (index + 1) * width,
            )?))
        })
        .collect()
}

/// The root of the perfect, aligned subtree of `n_leaves` leaves starting at `start`, from
/// the highest tile level that covers it.
pub(crate) fn perfect_subtree_root(
    tx: &mut dyn Tx,
    start: u64,
    n_leaves: u64,
) -> Result<Hash, StoreError> {
    for level in LEVELS.into_iter().rev() {
        let width = 1u64 << level;
        if n_leaves < width {
            continue;
        }
        if let Some(tiles) = read(tx, level, start / width, (start + n_leaves) / width)? {
            return Ok(root_of(&tiles));
        }
    }
    Ok(root_of(&read_leaf_hashes(tx, start, start + n_leaves)?))
}
