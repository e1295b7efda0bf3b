//! Property tests of the Merkle tree: proofs made for random trees verify, corrupted ones don't.
//!
//! Trees have 1..2000 leaves derived from a random seed (all distinct). For each: every
//! inclusion and consistency proof we make verifies against `root_of`, and equals the proof
//! of the RFC 9162 definitions (section 2.1) written out below independently of the crate;
//! every corruption of a proof (a flipped bit, a dropped or added hash, another index or
//! size, another root) is refused; and a `Frontier` grown by `push` has the reference root at
//! every prefix. Small trees are also checked exhaustively, every index and size pair.
//!
//! A note on sizes: a proof does not bind the tree size by itself, the root does. In RFC 9162
//! as here, the proof for leaf 0 of 5 leaves also "verifies" for 6 leaves against the 5-leaf
//! root, and the consistency proof from 1 to 516 leaves also "verifies" from 1 to 967 against
//! the 516-leaf root: same proof length, same left/right steps. So a changed tree size is
//! checked against the root of a tree of that size (always refused, as a proof's subtrees
//! cover exactly its tree), and only a changed old size is also checked with the old root
//! kept (refused, as the old root must then be recomputed from the wrong subtrees).

use ascribe_ledger::merkle::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root_of,
    verify_consistency, verify_inclusion, Frontier, Hash, ProofError,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Most leaves in a generated tree, exclusive.
const MAX_SIZE: u64 = 2000;

/// `size` distinct leaf hashes derived from `seed`.
fn leaves(seed: u64, size: u64) -> Vec<Hash> {
    (0..size)
        .map(|i| leaf_hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

/// RFC 9162 section 2.1 written out directly: MTH, PATH and SUBPROOF over a table of the
/// perfect, aligned subtrees (so that a root costs O(log n)). It shares no code with the
/// crate's `Frontier` or proof ranges; it uses only the crate's two hash functions, which
/// `rfc9162_vectors.rs` checks against published values.
struct Reference {
    /// `levels[j][i]` is the root of leaves `[i << j, (i + 1) << j)`.
    levels: Vec<Vec<Hash>>,
}

impl Reference {
    fn new(leaves: &[Hash]) -> Reference {
        let mut levels = vec![leaves.to_vec()];
        while let Some(last) = levels.last().filter(|level| level.len() >= 2) {
            let next = last
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(next);
        }
        Reference { levels }
    }

    /// The largest power of two smaller than `n`, for `n > 1`.
    fn split(n: u64) -> u64 {
        n.next_power_of_two() / 2
    }

    /// MTH(D[lo:hi]).
    fn mth(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && lo % n == 0 {
            return self.levels[n.trailing_zeros() as usize][(lo / n) as usize];
        }
        let k = Reference::split(n);
        node_hash(&self.mth(lo, lo + k), &self.mth(lo + k, hi))
    }

    /// PATH(m, D[lo:hi]).
    fn path(&self, m: u64, lo: u64, hi: u64) -> Vec<Hash> {
        if hi - lo <= 1 {
            return Vec::new();
        }
        let k = Reference::split(hi - lo);
        if m < k {
            let mut path = self.path(m, lo, lo + k);
            path.push(self.mth(lo + k, hi));
            path
        } else {
            let mut path = self.path(m - k, lo + k, hi);
            path.push(self.mth(lo, lo + k));
            path
        }
    }

    /// PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true), for 0 < m <= n.
    fn proof(&self, m: u64, n: u64) -> Vec<Hash> {
        self.subproof(m, 0, n, true)
    }

    /// SUBPROOF(m, D[lo:hi], b).
    fn subproof(&self, m: u64, lo: u64, hi: u64, b: bool) -> Vec<Hash> {
        let n = hi - lo;
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![self.mth(lo, hi)]
            };
        }
        let k = Reference::split(n);
        if m <= k {
            let mut proof = self.subproof(m, lo, lo + k, b);
            proof.push(self.mth(lo + k, hi));
            proof
        } else {
            let mut proof = self.subproof(m - k, lo + k, hi, false);
            proof.push(self.mth(lo, lo + k));
            proof
        }
    }
}

fn make_inclusion(leaves: &[Hash], index: u64, size: u64) -> Vec<Hash> {
    let mut source: &[Hash] = &leaves[..size as usize];
    inclusion_proof(index, size, &mut source).expect("index is inside the tree")
}

fn make_consistency(leaves: &[Hash], old: u64, new: u64) -> Vec<Hash> {
    let mut source: &[Hash] = &leaves[..new as usize];
    consistency_proof(old, new, &mut source).expect("sizes are in order")
}

/// A tree size in 1..MAX_SIZE and a leaf index inside it.
fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1..MAX_SIZE).prop_flat_map(|size| (Just(size), 0..size))
}

/// Tree sizes 0 <= old <= new with new in 1..MAX_SIZE.
fn old_and_new() -> impl Strategy<Value = (u64, u64)> {
    (1..MAX_SIZE).prop_flat_map(|new| (0..=new, Just(new)))
}

/// Tree sizes 1 <= old < new < MAX_SIZE: the proof is never empty.
fn strictly_growing() -> impl Strategy<Value = (u64, u64)> {
    (2..MAX_SIZE).prop_flat_map(|new| (1..new, Just(new)))
}

/// `value` moved to another value in `0..bound`, chosen by `pick`; needs `bound >= 2`.
fn another(value: u64, bound: u64, pick: Index) -> u64 {
    let other = pick.index(bound as usize - 1) as u64;
    if other >= value {
        other + 1
    } else {
        other
    }
}

fn flip_bit(proof: &[Hash], position: usize, bit: usize) -> Vec<Hash> {
    let mut flipped = proof.to_vec();
    flipped[position][bit / 8] ^= 1 << (bit % 8);
    flipped
}

fn is_mismatch<T>(result: &Result<T, ProofError>) -> bool {
    matches!(result, Err(ProofError::RootMismatch { .. }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn inclusion_proofs_verify_and_follow_the_rfc((size, index) in size_and_index(), seed: u64) {
        let leaves = leaves(seed, size);
        let root = root_of(&leaves);
        let proof = make_inclusion(&leaves, index, size);
        let leaf = &leaves[index as usize];
        prop_assert_eq!(verify_inclusion(index, size, leaf, &proof, &root), Ok(()));
        let reference = Reference::new(&leaves);
        prop_assert_eq!(reference.mth(0, size), root);
        prop_assert_eq!(proof, reference.path(index, 0, size));
    }

    #[test]
    fn consistency_proofs_verify_and_follow_the_rfc((old, new) in old_and_new(), seed: u64) {
        let leaves = leaves(seed, new);
        let (old_root, new_root) = (root_of(&leaves[..old as usize]), root_of(&leaves));
        let proof = make_consistency(&leaves, old, new);
        prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));
        if old > 0 {
            prop_assert_eq!(proof, Reference::new(&leaves).proof(old, new));
        } else {
            prop_assert!(proof.is_empty());
        }
    }

    #[test]
    fn corrupted_inclusion_proofs_fail(
        (size, index) in size_and_index(),
        seed: u64,
        position: Index,
        bit in 0usize..256,
        extra: [u8; 32],
        pick: Index,
        other_size in 1..MAX_SIZE,
    ) {
        let all = leaves(seed, size.max(other_size));
        let leaves = &all[..size as usize];
        let root = root_of(leaves);
        let proof = make_inclusion(leaves, index, size);
        let leaf = leaves[index as usize];
        let verify = |index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash| {
            verify_inclusion(index, size, leaf, proof, root)
        };

        if !proof.is_empty() {
            let at = position.index(proof.len());
            let flipped = flip_bit(&proof, at, bit);
            prop_assert!(is_mismatch(&verify(index, size, &leaf, &flipped, &root)), "flip");
            let mut dropped = proof.clone();
            dropped.remove(at);
            prop_assert!(verify(index, size, &leaf, &dropped, &root).is_err(), "drop");
        }
        let mut added = proof.clone();
        added.insert(position.index(proof.len() + 1), extra);
        prop_assert!(verify(index, size, &leaf, &added, &root).is_err(), "add");

        // Another index: the proof must not place this leaf there, nor there's leaf here.
        if size > 1 {
            let other = another(index, size, pick);
            prop_assert!(verify(other, size, &leaf, &proof, &root).is_err(), "index");
            let other_leaf = leaves[other as usize];
            let result = verify(index, size, &other_leaf, &proof, &root);
            prop_assert!(is_mismatch(&result), "other leaf");
        }
        prop_assert!(verify(index + size, size, &leaf, &proof, &root).is_err(), "index out");
        prop_assert!(verify(size, size, &leaf, &proof, &root).is_err(), "index = size");
        let flipped_leaf = flip_bit(&[leaf], 0, bit)[0];
        prop_assert!(is_mismatch(&verify(index, size, &flipped_leaf, &proof, &root)), "leaf");

        // Another size, with the root of the tree of that size.
        if other_size != size {
            let other_root = root_of(&all[..other_size as usize]);
            let result = verify(index, other_size, &leaf, &proof, &other_root);
            prop_assert!(result.is_err(), "size {} with its root", other_size);
            // And the other tree's root with this size.
            prop_assert!(is_mismatch(&verify(index, size, &leaf, &proof, &other_root)), "root");
        }
        prop_assume!(extra != root);
        prop_assert!(is_mismatch(&verify(index, size, &leaf, &proof, &extra)), "random root");
        prop_assert!(is_mismatch(&verify(index, size, &leaf, &proof, &empty_root())), "empty");
    }

    #[test]
    fn corrupted_consistency_proofs_fail(
        (old, new) in strictly_growing(),
        seed: u64,
        position: Index,
        bit in 0usize..256,
        extra: [u8; 32],
        pick: Index,
        other_new in 1..MAX_SIZE,
    ) {
        let all = leaves(seed, new.max(other_new));
        let root = |size: u64| root_of(&all[..size as usize]);
        let (r1, r2) = (root(old), root(new));
        let proof = make_consistency(&all, old, new);
        prop_assert!(!proof.is_empty());
        let verify = |old: u64, new: u64, r1: &Hash, r2: &Hash, proof: &[Hash]| {
            verify_consistency(old, new, r1, r2, proof)
        };

        let at = position.index(proof.len());
        prop_assert!(is_mismatch(&verify(old, new, &r1, &r2, &flip_bit(&proof, at, bit))));
        let mut dropped = proof.clone();
        dropped.remove(at);
        prop_assert!(verify(old, new, &r1, &r2, &dropped).is_err(), "drop");
        let mut added = proof.clone();
        added.insert(position.index(proof.len() + 1), extra);
        prop_assert!(verify(old, new, &r1, &r2, &added).is_err(), "add");

        // Another old size, with its own root and with the original one; and size 0.
        let other_old = another(old, new + 1, pick);
        let result = verify(other_old, new, &root(other_old), &r2, &proof);
        prop_assert!(result.is_err(), "old size {} with its root", other_old);
        prop_assert!(verify(other_old, new, &r1, &r2, &proof).is_err(), "old size {}", other_old);
        // Another new size, with the root of the tree of that size.
        if other_new != new && other_new >= old {
            let result = verify(old, other_new, &r1, &root(other_new), &proof);
            prop_assert!(result.is_err(), "new size {} with its root", other_new);
        }

        // Other roots.
        prop_assume!(extra != r1 && extra != r2);
        prop_assert!(is_mismatch(&verify(old, new, &extra, &r2, &proof)), "old root");
        prop_assert!(is_mismatch(&verify(old, new, &r1, &extra, &proof)), "new root");
        prop_assert!(is_mismatch(&verify(old, new, &r2, &r1, &proof)), "swapped roots");
        let wrong_old = root(another(old, new, pick).max(1));
        if wrong_old != r1 {
            prop_assert!(is_mismatch(&verify(old, new, &wrong_old, &r2, &proof)));
        }
    }

    #[test]
    fn equal_sizes_need_equal_roots_and_no_hashes(size in 0..MAX_SIZE, extra: [u8; 32]) {
        let leaves = leaves(size, size);
        let root = root_of(&leaves);
        prop_assert_eq!(make_consistency(&leaves, size, size), Vec::<Hash>::new());
        prop_assert_eq!(verify_consistency(size, size, &root, &root, &[]), Ok(()));
        prop_assume!(extra != root);
        prop_assert!(is_mismatch(&verify_consistency(size, size, &root, &extra, &[])));
        prop_assert!(is_mismatch(&verify_consistency(size, size, &extra, &root, &[])));
        let result = verify_consistency(size, size, &root, &root, &[extra]);
        prop_assert_eq!(result, Err(ProofError::WrongLength { got: 1, expected: 0 }));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn frontier_grown_by_push_has_the_root_of_every_prefix(
        size in 1..MAX_SIZE,
        seed: u64,
        probes in prop::collection::vec(any::<Index>(), 3),
    ) {
        let leaves = leaves(seed, size);
        let reference = Reference::new(&leaves);
        let probes: Vec<u64> = probes.iter().map(|probe| probe.index(size as usize + 1) as u64)
            .chain([0, size])
            .collect();
        let mut frontier = Frontier::new();
        for prefix in 0..=size {
            if prefix > 0 {
                frontier.push(leaves[prefix as usize - 1]);
            }
            prop_assert_eq!(frontier.size(), prefix);
            prop_assert_eq!(frontier.root(), reference.mth(0, prefix), "prefix {}", prefix);
            if probes.contains(&prefix) {
                let prefix_leaves = &leaves[..prefix as usize];
                prop_assert_eq!(frontier.root(), root_of(prefix_leaves), "prefix {}", prefix);
                let mut source = prefix_leaves;
                let rebuilt = Frontier::from_source(prefix, &mut source).expect("in range");
                prop_assert_eq!(&rebuilt, &frontier, "prefix {}", prefix);
            }
        }
    }
}

/// Every (index, size) against every other (index, size) of small trees: a proof verifies
/// for its own claim only, against the roots of the same log at each size.
#[test]
fn small_trees_exhaustively_inclusion() {
    const MAX: u64 = 20;
    let leaves = leaves(7, MAX);
    let roots: Vec<Hash> = (0..=MAX)
        .map(|size| root_of(&leaves[..size as usize]))
        .collect();
    for size in 1..=MAX {
        let reference = Reference::new(&leaves[..size as usize]);
        for index in 0..size {
            let proof = make_inclusion(&leaves, index, size);
            assert_eq!(
                proof,
                reference.path(index, 0, size),
                "index {index} of {size}"
            );
            let leaf = &leaves[index as usize];
            for other_size in 1..=MAX {
                for other_index in 0..other_size {
                    let root = &roots[other_size as usize];
                    let result = verify_inclusion(other_index, other_size, leaf, &proof, root);
                    let own = (other_index, other_size) == (index, size);
                    assert_eq!(
                        result.is_ok(),
                        own,
                        "proof of {index} in {size} checked as {other_index} in {other_size}"
                    );
                }
            }
        }
    }
}

/// Every (old, new) against every other (old, new) of small trees, with the roots of the
/// same log at each size, and with the old root kept when only the old size changes.
#[test]
fn small_trees_exhaustively_consistency() {
    const MAX: u64 = 24;
    let leaves = leaves(11, MAX);
    let roots: Vec<Hash> = (0..=MAX)
        .map(|size| root_of(&leaves[..size as usize]))
        .collect();
    for new in 1..=MAX {
        let reference = Reference::new(&leaves[..new as usize]);
        for old in 1..new {
            let proof = make_consistency(&leaves, old, new);
            assert_eq!(proof, reference.proof(old, new), "{old} to {new}");
            for other_new in 1..=MAX {
                for other_old in 0..=other_new {
                    let (r1, r2) = (&roots[other_old as usize], &roots[other_new as usize]);
                    let result = verify_consistency(other_old, other_new, r1, r2, &proof);
                    let own = (other_old, other_new) == (old, new);
                    assert_eq!(
                        result.is_ok(),
                        own,
                        "proof of {old} to {new} checked as {other_old} to {other_new}"
                    );
                    if other_old != old {
                        let kept = &roots[old as usize];
                        let result = verify_consistency(other_old, other_new, kept, r2, &proof);
                        assert!(
                            result.is_err(),
                            "{old} to {new} as {other_old} to {other_new}"
                        );
                    }
                }
            }
        }
    }
}
