//! The RFC 9162 Merkle tree: hashing, appends and proofs.
//!
//! Hashes, with `||` for concatenation:
//!
//! ```text
//! leaf hash = SHA-256(0x00 || entry bytes)
//! node hash = SHA-256(0x01 || left || right)
//! empty root = SHA-256("")
//! ```
//!
//! The tree over `n` leaves splits at the largest power of two `k < n`, as in RFC 9162
//! section 2.1.1. Proof generation is split in two steps so that a store can fetch what it
//! needs in one pass: [`inclusion_proof_ranges`] and [`consistency_proof_ranges`] say which
//! subtrees (half-open leaf ranges) the proof is made of, and [`SubtreeSource`] hashes them.

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain-separation prefix of a leaf hash.
pub const LEAF_PREFIX: u8 = 0x00;

/// Domain-separation prefix of an interior node hash.
pub const NODE_PREFIX: u8 = 0x01;

/// Hashes one entry's bytes into a leaf.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// Hashes two child hashes into their parent.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: the SHA-256 of no bytes.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The root of the tree over `leaves` (leaf hashes, in order).
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

/// The largest power of two strictly below `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first.
///
/// Appending a leaf merges at most log2(n) nodes, so a writer keeps a `Frontier` in memory
/// instead of rescanning the log. A tree of size `n` has one perfect subtree per set bit of
/// `n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its subtree roots.
    pub fn from_source<S: SubtreeSource>(size: u64, source: &mut S) -> Result<Frontier, S::Error> {
        let nodes = frontier_ranges(size)
            .into_iter()
            .map(|(start, end)| source.subtree_root(start, end))
            .collect::<Result<Vec<Hash>, S::Error>>()?;
        Ok(Frontier { size, nodes })
    }

    /// Rebuilds a frontier from a stored [`Frontier::nodes`] list; `None` when the number of
    /// nodes does not fit the size (one per set bit of `size`).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Frontier> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    /// The perfect-subtree roots, largest (leftmost) first; see [`frontier_ranges`].
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash in O(log n).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// The leaf ranges of the perfect subtrees that make up a tree of `size` leaves, left first.
pub fn frontier_ranges(size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for bit in (0..64).rev() {
        let width = 1u64 << bit;
        if size & width != 0 {
            ranges.push((start, start + width));
            start += width;
        }
    }
    ranges
}

/// Anything that can hash the subtree over leaves `[start, end)`.
///
/// The ranges asked for by the proof functions are always either perfect and aligned
/// (`end - start` a power of two, `start` a multiple of it) or the right edge of the tree.
pub trait SubtreeSource {
    /// The error of the underlying storage.
    type Error;

    /// Returns the root of the subtree over leaves `[start, end)`, with `start < end`.
    fn subtree_root(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error>;
}

impl SubtreeSource for &[Hash] {
    type Error = ProofError;

    fn subtree_root(&mut self, start: u64, end: u64) -> Result<Hash, ProofError> {
        let range = usize::try_from(start).ok().zip(usize::try_from(end).ok());
        match range.and_then(|(start, end)| self.get(start..end)) {
            Some(leaves) if start < end => Ok(root_of(leaves)),
            _ => Err(ProofError::IndexOutOfRange {
                index: end,
                size: self.len() as u64,
            }),
        }
    }
}

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not inside a tree of size {size}; it must be below the size")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size it was asked against.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("tree size {old} is larger than tree size {new}; the older tree must come first")]
    SizesOutOfOrder {
        /// The size given as the older tree.
        old: u64,
        /// The size given as the newer tree.
        new: u64,
    },
    /// The proof has the wrong number of hashes for its sizes.
    #[error("proof has {got} hashes where {expected} are needed")]
    WrongLength {
        /// Number of hashes received.
        got: usize,
        /// Number the sizes call for.
        expected: usize,
    },
    /// The hashes recomputed from the proof do not reach the claimed root.
    #[error("proof does not lead to the expected root: computed {computed}, expected {expected}")]
    RootMismatch {
        /// The root recomputed from the proof, hex.
        computed: String,
        /// The root it should have reached, hex.
        expected: String,
    },
}

/// The subtrees an inclusion proof for leaf `index` in a tree of `size` is made of.
pub fn inclusion_proof_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut ranges = Vec::new();
    path_ranges(index, 0, size, &mut ranges);
    Ok(ranges)
}

/// RFC 9162 PATH(m, D[lo:hi]): the deeper part of the path comes first.
fn path_ranges(index: u64, lo: u64, hi: u64, ranges: &mut Vec<(u64, u64)>) {
    if hi - lo <= 1 {
        return;
    }
    let k = split_point(hi - lo);
    if index < k {
        path_ranges(index, lo, lo + k, ranges);
        ranges.push((lo + k, hi));
    } else {
        path_ranges(index - k, lo + k, hi, ranges);
        ranges.push((lo, lo + k));
    }
}

/// The subtrees a consistency proof from tree size `old` to `new` is made of.
///
/// Sizes equal, or an old size of 0, need no hashes: the proof is empty.
pub fn consistency_proof_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    let mut ranges = Vec::new();
    if old > 0 && old < new {
        subproof_ranges(old, 0, new, true, &mut ranges);
    }
    Ok(ranges)
}

/// RFC 9162 SUBPROOF(m, D[lo:hi], b).
fn subproof_ranges(m: u64, lo: u64, hi: u64, whole: bool, ranges: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if m == n {
        if !whole {
            ranges.push((lo, hi));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof_ranges(m, lo, lo + k, whole, ranges);
        ranges.push((lo + k, hi));
    } else {
        subproof_ranges(m - k, lo + k, hi, false, ranges);
        ranges.push((lo, lo + k));
    }
}

/// Builds an inclusion proof by hashing each range of [`inclusion_proof_ranges`].
pub fn inclusion_proof<S>(index: u64, size: u64, source: &mut S) -> Result<Vec<Hash>, S::Error>
where
    S: SubtreeSource,
    S::Error: From<ProofError>,
{
    let ranges = inclusion_proof_ranges(index, size)?;
    ranges
        .into_iter()
        .map(|(start, end)| source.subtree_root(start, end))
        .collect()
}

/// Builds a consistency proof by hashing each range of [`consistency_proof_ranges`].
pub fn consistency_proof<S>(old: u64, new: u64, source: &mut S) -> Result<Vec<Hash>, S::Error>
where
    S: SubtreeSource,
    S::Error: From<ProofError>,
{
    let ranges = consistency_proof_ranges(old, new)?;
    ranges
        .into_iter()
        .map(|(start, end)| source.subtree_root(start, end))
        .collect()
}

/// Checks that `leaf` sits at `index` in the tree of `size` whose root is `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let expected_length = inclusion_proof_ranges(index, size)?.len();
    if proof.len() != expected_length {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: expected_length,
        });
    }
    let mut node_index = index;
    let mut last_index = size - 1;
    let mut computed = *leaf;
    for sibling in proof {
        if node_index & 1 == 1 || node_index == last_index {
            computed = node_hash(sibling, &computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            computed = node_hash(&computed, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    expect_root(&computed, root)
}

/// Checks that the tree of size `old` with root `old_root` is a prefix of the tree of size
/// `new` with root `new_root` (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let expected_length = consistency_proof_ranges(old, new)?.len();
    if proof.len() != expected_length {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: expected_length,
        });
    }
    // Equal sizes first: two heads of the same size, even of the empty tree, must agree.
    if old == new {
        return expect_root(new_root, old_root);
    }
    if old == 0 {
        return Ok(());
    }

    // When the old tree is a perfect subtree, its root is the proof's implicit first node.
    let mut path = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);

    let mut node_index = old - 1;
    let mut last_index = new - 1;
    while node_index & 1 == 1 {
        node_index >>= 1;
        last_index >>= 1;
    }
    let mut old_computed = path[0];
    let mut new_computed = path[0];
    for sibling in &path[1..] {
        if node_index & 1 == 1 || node_index == last_index {
            old_computed = node_hash(sibling, &old_computed);
            new_computed = node_hash(sibling, &new_computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            new_computed = node_hash(&new_computed, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    expect_root(&old_computed, old_root)?;
    expect_root(&new_computed, new_root)
}

fn expect_root(computed: &Hash, expected: &Hash) -> Result<(), ProofError> {
    if computed == expected {
        return Ok(());
    }
    Err(ProofError::RootMismatch {
        computed: hex::encode(computed),
        expected: hex::encode(expected),
    })
}

#[cfg(test)]
mod tests;
