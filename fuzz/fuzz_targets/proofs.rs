//! The RFC 9162 proof verifiers: `verify_inclusion` and `verify_consistency`.
//!
//! Input: one byte choosing the mode, then bytes read as numbers and hashes.
//!
//! - Raw mode: sizes, an index and a proof straight from the input; the verifiers must
//!   never panic, whatever the sizes (up to `u64::MAX`) and proof lengths.
//! - Forgery mode: a real tree of up to 300 leaves, a real proof, and one change picked by
//!   the input (a flipped bit in a proof hash, the leaf or a root; a hash dropped or added;
//!   another leaf index). The real proof must verify and no changed proof may.
//!
//! Tree sizes are not changed: a size and its root come together from a signed tree head,
//! and RFC 9162 proofs do not bind a size on their own (the proof of leaf 0 in a tree of 3
//! also leads to that tree's root when told the size is 4).
#![no_main]

use ascribe_ledger::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root_of, verify_consistency, verify_inclusion,
    Hash,
};
use libfuzzer_sys::fuzz_target;

/// Reads numbers and hashes off the front of the input; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    fn hashes(&mut self) -> Vec<Hash> {
        self.0
            .chunks_exact(32)
            .map(|chunk| Hash::try_from(chunk).unwrap_or([0; 32]))
            .collect()
    }
}

fn raw(mut input: Input<'_>) {
    let (index, size, old) = (input.u64(), input.u64(), input.u64());
    let (leaf, root, old_root) = ([input.byte(); 32], [input.byte(); 32], [input.byte(); 32]);
    let proof = input.hashes();
    let _ = verify_inclusion(index, size, &leaf, &proof, &root);
    let _ = verify_consistency(old, size, &old_root, &root, &proof);
    let _ = verify_consistency(index, old, &old_root, &root, &proof);
}

/// A change to a proof, its leaf or its roots, picked by the input.
enum Change {
    FlipBit { hash: usize, bit: u8 },
    Drop(usize),
    Add([u8; 32]),
    FlipLeafOrOldRoot(u8),
    FlipRoot(u8),
    OtherIndex(u64),
}

fn change(input: &mut Input<'_>) -> Change {
    match input.byte() % 6 {
        0 => Change::FlipBit {
            hash: usize::from(input.u16()),
            bit: input.byte(),
        },
        1 => Change::Drop(usize::from(input.u16())),
        2 => Change::Add([input.byte(); 32]),
        3 => Change::FlipLeafOrOldRoot(input.byte()),
        4 => Change::FlipRoot(input.byte()),
        _ => Change::OtherIndex(u64::from(input.u16())),
    }
}

fn flip(hash: &mut Hash, bit: u8) {
    hash[usize::from(bit / 8) % 32] ^= 1 << (bit % 8);
}

/// Applies `change` to (index, first hash, proof, root); returns false when it would change
/// nothing (the real index, or a proof with nothing to flip or drop).
fn apply(
    change: &Change,
    index: &mut u64,
    first: &mut Hash,
    proof: &mut Vec<Hash>,
    root: &mut Hash,
) -> bool {
    match *change {
        Change::FlipBit { hash, bit } => {
            if proof.is_empty() {
                return false;
            }
            let at = hash % proof.len();
            flip(&mut proof[at], bit);
        }
        Change::Drop(at) => {
            if proof.is_empty() {
                return false;
            }
            let at = at % proof.len();
            proof.remove(at);
        }
        Change::Add(hash) => proof.push(hash),
        Change::FlipLeafOrOldRoot(bit) => flip(first, bit),
        Change::FlipRoot(bit) => flip(root, bit),
        Change::OtherIndex(other) => {
            if other == *index {
                return false;
            }
            *index = other;
        }
    }
    true
}

fn forgery(mut input: Input<'_>) {
    let size = 1 + u64::from(input.u16() % 300);
    let index = u64::from(input.u16()) % size;
    let old = u64::from(input.u16()) % (size + 1);
    let consistency = input.byte() % 2 == 1;
    let change = change(&mut input);
    let salt = input.byte();
    let leaves: Vec<Hash> = (0..size)
        .map(|leaf| leaf_hash(format!("entry {leaf} {salt}").as_bytes()))
        .collect();
    let root = root_of(&leaves);
    let mut source = leaves.as_slice();

    if consistency {
        let old_root = root_of(&leaves[..old as usize]);
        let proof = consistency_proof(old, size, &mut source).expect("real proof");
        assert_eq!(
            verify_consistency(old, size, &old_root, &root, &proof),
            Ok(()),
            "a real consistency proof {old} -> {size} is refused"
        );
        // Sizes come with their roots, and the empty tree is a prefix of every tree: from
        // size 0 no root is read.
        if old == 0 || matches!(change, Change::OtherIndex(_)) {
            return;
        }
        let (mut unchanged, mut forged_old_root, mut forged_root, mut forged) =
            (old, old_root, root, proof);
        if !apply(
            &change,
            &mut unchanged,
            &mut forged_old_root,
            &mut forged,
            &mut forged_root,
        ) {
            return;
        }
        let verdict = verify_consistency(old, size, &forged_old_root, &forged_root, &forged);
        assert!(
            verdict.is_err(),
            "a changed consistency proof {old} -> {size} verified"
        );
    } else {
        let leaf = leaves[index as usize];
        let proof = inclusion_proof(index, size, &mut source).expect("real proof");
        assert_eq!(
            verify_inclusion(index, size, &leaf, &proof, &root),
            Ok(()),
            "a real inclusion proof of {index} in {size} is refused"
        );
        let mut forged_index = index;
        let (mut forged_leaf, mut forged_root, mut forged) = (leaf, root, proof);
        if !apply(
            &change,
            &mut forged_index,
            &mut forged_leaf,
            &mut forged,
            &mut forged_root,
        ) {
            return;
        }
        let verdict = verify_inclusion(forged_index, size, &forged_leaf, &forged, &forged_root);
        assert!(
            verdict.is_err(),
            "a changed inclusion proof verified: leaf {index} of {size} as leaf {forged_index}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    if input.byte() % 2 == 0 {
        raw(input);
    } else {
        forgery(input);
    }
});
