//! Known-answer tests of the RFC 6962/9162 Merkle tree against published test vectors.
//!
//! Every expected value below is copied verbatim from the file cited above its table; none
//! is computed by this crate. The tables cover the hasher (empty root, leaf and node hashes),
//! the roots of the reference tree at every size 0..=8, its compact-range nodes, every
//! inclusion and consistency proof those sources list (our proof must equal the published
//! one, and our verifier must accept the published one), the proof shapes of
//! `transparency-dev/merkle` for trees up to 95 leaves, and the accumulated subtree vectors
//! of draft-ietf-plants-merkle-tree-certs for trees up to 130 leaves. Each published proof is
//! then mutated in the ways those sources list, and every mutation must be refused.

use ascribe_ledger::merkle::{
    consistency_proof, consistency_proof_ranges, empty_root, frontier_ranges, inclusion_proof,
    inclusion_proof_ranges, leaf_hash, node_hash, root_of, verify_consistency, verify_inclusion,
    Frontier, Hash, ProofError,
};
use sha2::{Digest, Sha256};

/// Decodes a published 32-byte hash.
fn h(hex_text: &str) -> Hash {
    let bytes = hex::decode(hex_text).expect("published hash is hex");
    Hash::try_from(bytes.as_slice()).expect("published hash is 32 bytes")
}

fn hashes(hex_texts: &[&str]) -> Vec<Hash> {
    hex_texts.iter().map(|text| h(text)).collect()
}

// ---------------------------------------------------------------------------------------------
// The reference tree.
// ---------------------------------------------------------------------------------------------

// Source: transparency-dev/merkle, testonly/constants.go, `LeafInputs()`; the same eight
// inputs are `kInputs` in google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

// Source: transparency-dev/merkle, testonly/constants.go, `NodeHashes()`: the hashes of all
// perfect subtrees of the reference tree, by level (0 = leaves) and index within the level.
// Each leaf hash can be recomputed with, for input hex X:
//   (printf '\000'; printf X | xxd -r -p) | sha256sum
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

// Source: transparency-dev/merkle, testonly/constants.go, `RootHashes()` (index = tree size,
// from the empty tree); sizes 1..=8 are also `kSHA256Roots` in google/certificate-transparency,
// cpp/merkletree/merkle_tree_test.cc, and `roots` in transparency-dev/merkle,
// proof/verify_test.go.
const ROOTS: [&str; 9] = [
    // The empty tree, `EmptyRootHash()`:  printf '' | sha256sum
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

// Source: transparency-dev/merkle, testonly/constants.go, `CompactTrees()`: for each tree
// size, the (level, index) in `NODE_HASHES` of the perfect subtrees making up the tree,
// largest first.
const COMPACT_TREES: [&[(usize, usize)]; 9] = [
    &[],
    &[(0, 0)],
    &[(1, 0)],
    &[(1, 0), (0, 2)],
    &[(2, 0)],
    &[(2, 0), (0, 4)],
    &[(2, 0), (1, 2)],
    &[(2, 0), (1, 2), (0, 6)],
    &[(3, 0)],
];

// Source: transparency-dev/merkle, proof/verify_test.go, `sha256SomeHash`, used there as a
// hash that is no node of any tree.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn leaf_inputs() -> Vec<Vec<u8>> {
    LEAF_INPUTS
        .iter()
        .map(|input| hex::decode(input).expect("published input is hex"))
        .collect()
}

fn leaf_hashes() -> Vec<Hash> {
    leaf_inputs().iter().map(|input| leaf_hash(input)).collect()
}

fn root(size: u64) -> Hash {
    h(ROOTS[size as usize])
}

// ---------------------------------------------------------------------------------------------
// Hashing.
// ---------------------------------------------------------------------------------------------

// Source: transparency-dev/merkle, rfc6962/rfc6962_test.go, `TestRFC6962Hasher`.
#[test]
fn empty_root_is_sha256_of_nothing() {
    // printf '' | sha256sum
    let expected = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(empty_root(), expected);
    assert_eq!(root_of(&[]), expected);
    assert_eq!(Frontier::new().root(), expected);
}

// Source: transparency-dev/merkle, rfc6962/rfc6962_test.go, `TestRFC6962Hasher`, "RFC6962
// Empty Leaf": the hash of an empty leaf differs from the empty root.
#[test]
fn leaf_hash_of_empty_entry() {
    // printf '\000' | sha256sum
    let expected = h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    assert_eq!(leaf_hash(b""), expected);
    assert_ne!(leaf_hash(b""), empty_root());
}

// Source: transparency-dev/merkle, rfc6962/rfc6962_test.go, `TestRFC6962Hasher`, "RFC6962
// Leaf".
#[test]
fn leaf_hash_of_l123456() {
    // printf '\000L123456' | sha256sum
    let expected = h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
    assert_eq!(leaf_hash(b"L123456"), expected);
}

#[test]
fn leaf_inputs_hash_to_published_leaf_hashes() {
    for (index, input) in leaf_inputs().iter().enumerate() {
        assert_eq!(leaf_hash(input), h(NODE_HASHES[0][index]), "leaf {index}");
    }
}

#[test]
fn published_node_hashes_are_parents_of_their_children() {
    for level in 1..NODE_HASHES.len() {
        for (index, parent) in NODE_HASHES[level].iter().enumerate() {
            let left = h(NODE_HASHES[level - 1][2 * index]);
            let right = h(NODE_HASHES[level - 1][2 * index + 1]);
            assert_eq!(
                node_hash(&left, &right),
                h(parent),
                "level {level} index {index}"
            );
            assert_ne!(node_hash(&right, &left), h(parent), "order must matter");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Roots and the frontier.
// ---------------------------------------------------------------------------------------------

#[test]
fn root_for_every_tree_size_0_to_8() {
    let leaves = leaf_hashes();
    let mut frontier = Frontier::new();
    assert_eq!(frontier.root(), root(0));
    for size in 0..=leaves.len() {
        if size > 0 {
            frontier.push(leaves[size - 1]);
        }
        assert_eq!(
            root_of(&leaves[..size]),
            root(size as u64),
            "root_of, size {size}"
        );
        assert_eq!(frontier.size(), size as u64);
        assert_eq!(
            frontier.root(),
            root(size as u64),
            "pushed frontier, size {size}"
        );
        let mut source: &[Hash] = &leaves[..size];
        let rebuilt = Frontier::from_source(size as u64, &mut source).expect("in range");
        assert_eq!(rebuilt, frontier, "frontier from source, size {size}");
    }
}

#[test]
fn frontier_ranges_are_the_published_compact_trees() {
    let leaves = leaf_hashes();
    for (size, expected) in COMPACT_TREES.iter().enumerate() {
        let got: Vec<Hash> = frontier_ranges(size as u64)
            .into_iter()
            .map(|(start, end)| root_of(&leaves[start as usize..end as usize]))
            .collect();
        let expected: Vec<Hash> = expected
            .iter()
            .map(|&(level, index)| h(NODE_HASHES[level][index]))
            .collect();
        assert_eq!(got, expected, "size {size}");
    }
}

// ---------------------------------------------------------------------------------------------
// Inclusion proofs.
// ---------------------------------------------------------------------------------------------

/// A published inclusion proof. `leaf` is numbered from 1 as in both sources, so the leaf
/// index is `leaf - 1`.
struct InclusionVector {
    leaf: u64,
    size: u64,
    proof: &'static [&'static str],
}

// Source: transparency-dev/merkle, proof/verify_test.go, `inclusionProofs` (entries 1..6;
// entry 0, `{0, 0, nil}`, is the invalid leaf 0 and is tested in
// `inclusion_of_invalid_leaf_numbers_is_refused`); identical to `kSHA256Paths` in
// google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc.
const INCLUSION_VECTORS: [InclusionVector; 5] = [
    InclusionVector {
        leaf: 1,
        size: 1,
        proof: &[],
    },
    InclusionVector {
        leaf: 1,
        size: 8,
        proof: &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    },
    InclusionVector {
        leaf: 6,
        size: 8,
        proof: &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    },
    InclusionVector {
        leaf: 3,
        size: 3,
        proof: &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    },
    InclusionVector {
        leaf: 2,
        size: 5,
        proof: &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    },
];

#[test]
fn generated_inclusion_proofs_equal_the_published_ones() {
    let leaves = leaf_hashes();
    for vector in &INCLUSION_VECTORS {
        let index = vector.leaf - 1;
        let mut source: &[Hash] = &leaves[..vector.size as usize];
        let got = inclusion_proof(index, vector.size, &mut source).expect("in range");
        assert_eq!(
            got,
            hashes(vector.proof),
            "leaf {} of {}",
            vector.leaf,
            vector.size
        );
    }
}

#[test]
fn published_inclusion_proofs_verify() {
    let leaves = leaf_hashes();
    for vector in &INCLUSION_VECTORS {
        let index = vector.leaf - 1;
        let result = verify_inclusion(
            index,
            vector.size,
            &leaves[index as usize],
            &hashes(vector.proof),
            &root(vector.size),
        );
        assert_eq!(result, Ok(()), "leaf {} of {}", vector.leaf, vector.size);
    }
}

/// Every inclusion for leaves 1..=8 of the reference tree, at every size, agrees between
/// generator and verifier, and the verifier lands on the published root.
#[test]
fn every_inclusion_in_the_reference_tree_verifies_against_the_published_roots() {
    let leaves = leaf_hashes();
    for size in 1..=leaves.len() as u64 {
        for index in 0..size {
            let mut source: &[Hash] = &leaves[..size as usize];
            let proof = inclusion_proof(index, size, &mut source).expect("in range");
            let result =
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root(size));
            assert_eq!(result, Ok(()), "index {index} of {size}");
        }
    }
}

/// One probe of `verify_inclusion`, named after the mutation that made it.
struct InclusionProbe {
    name: String,
    index: u64,
    size: u64,
    leaf: Hash,
    proof: Vec<Hash>,
    root: Hash,
}

/// The corruptions of `corruptInclusionProof` in transparency-dev/merkle,
/// proof/verify_test.go, and of `VerifierCheck` in google/certificate-transparency,
/// cpp/merkletree/merkle_tree_test.cc. Empty byte strings (not 32-byte hashes there) are
/// stood in for by the all-zero hash.
fn corrupt_inclusion(index: u64, size: u64, leaf: Hash, proof: &[Hash], root: Hash) {
    let probe = |name: &str, index: u64, size: u64, leaf: Hash, proof: Vec<Hash>, root: Hash| {
        InclusionProbe {
            name: name.to_owned(),
            index,
            size,
            leaf,
            proof,
            root,
        }
    };
    let with = |front: &[Hash], back: &[Hash]| [front, proof, back].concat();
    let garbage = [0u8; 32];
    let mut probes = vec![
        probe(
            "leafIndex - 1",
            index.wrapping_sub(1),
            size,
            leaf,
            proof.to_vec(),
            root,
        ),
        probe("leafIndex + 1", index + 1, size, leaf, proof.to_vec(), root),
        probe("leafIndex ^ 2", index ^ 2, size, leaf, proof.to_vec(), root),
        probe("treeSize * 2", index, size * 2, leaf, proof.to_vec(), root),
        probe("treeSize / 2", index, size / 2, leaf, proof.to_vec(), root),
        probe(
            "wrong leaf",
            index,
            size,
            leaf_hash(b"WrongLeaf"),
            proof.to_vec(),
            root,
        ),
        probe(
            "empty root",
            index,
            size,
            leaf,
            proof.to_vec(),
            empty_root(),
        ),
        probe(
            "random root",
            index,
            size,
            leaf,
            proof.to_vec(),
            h(SOME_HASH),
        ),
        probe(
            "trailing garbage",
            index,
            size,
            leaf,
            with(&[], &[garbage]),
            root,
        ),
        probe("trailing root", index, size, leaf, with(&[], &[root]), root),
        probe(
            "preceding garbage",
            index,
            size,
            leaf,
            with(&[garbage], &[]),
            root,
        ),
        probe(
            "preceding root",
            index,
            size,
            leaf,
            with(&[root], &[]),
            root,
        ),
    ];
    for position in 0..proof.len() {
        let mut flipped = proof.to_vec();
        flipped[position][0] ^= 8;
        let name = format!("modified proof[{position}] bit 3");
        probes.push(probe(&name, index, size, leaf, flipped, root));
        let mut replaced = proof.to_vec();
        replaced[position] = empty_root();
        let name = format!("proof[{position}] replaced by the empty root");
        probes.push(probe(&name, index, size, leaf, replaced, root));
    }
    if let Some((_, shorter)) = proof.split_last() {
        probes.push(probe(
            "removed component",
            index,
            size,
            leaf,
            shorter.to_vec(),
            root,
        ));
    }
    if proof.len() > 1 {
        let inserted = [&proof[..1], &[h(SOME_HASH)], &proof[1..]].concat();
        probes.push(probe(
            "inserted component",
            index,
            size,
            leaf,
            inserted,
            root,
        ));
    }
    for p in probes {
        let result = verify_inclusion(p.index, p.size, &p.leaf, &p.proof, &p.root);
        assert!(
            result.is_err(),
            "{} accepted (leaf index {index} of {size})",
            p.name
        );
    }
}

#[test]
fn every_mutation_of_a_published_inclusion_proof_is_refused() {
    let leaves = leaf_hashes();
    for vector in &INCLUSION_VECTORS {
        let index = vector.leaf - 1;
        let proof = hashes(vector.proof);
        corrupt_inclusion(
            index,
            vector.size,
            leaves[index as usize],
            &proof,
            root(vector.size),
        );
    }
}

/// The published proof for leaf 6 (index 5) of the 8-leaf tree, and what it proves.
fn leaf_6_of_8() -> (u64, u64, Hash, Vec<Hash>, Hash) {
    let vector = &INCLUSION_VECTORS[2];
    assert_eq!((vector.leaf, vector.size), (6, 8));
    (5, 8, leaf_hashes()[5], hashes(vector.proof), root(8))
}

#[test]
fn inclusion_with_index_off_by_one_fails() {
    let (index, size, leaf, proof, root) = leaf_6_of_8();
    for wrong in [index - 1, index + 1] {
        let result = verify_inclusion(wrong, size, &leaf, &proof, &root);
        assert!(
            matches!(result, Err(ProofError::RootMismatch { .. })),
            "index {wrong}"
        );
    }
}

#[test]
fn inclusion_with_one_flipped_bit_fails() {
    let (index, size, leaf, proof, root) = leaf_6_of_8();
    for position in 0..proof.len() {
        for bit in [0, 7, 255] {
            let mut flipped = proof.clone();
            flipped[position][bit / 8] ^= 1 << (bit % 8);
            let result = verify_inclusion(index, size, &leaf, &flipped, &root);
            let mismatch = matches!(result, Err(ProofError::RootMismatch { .. }));
            assert!(mismatch, "bit {bit} of proof[{position}]");
        }
    }
}

#[test]
fn inclusion_with_truncated_proof_fails() {
    let (index, size, leaf, proof, root) = leaf_6_of_8();
    let result = verify_inclusion(index, size, &leaf, &proof[..2], &root);
    assert_eq!(
        result,
        Err(ProofError::WrongLength {
            got: 2,
            expected: 3
        })
    );
    let result = verify_inclusion(index, size, &leaf, &[], &root);
    assert_eq!(
        result,
        Err(ProofError::WrongLength {
            got: 0,
            expected: 3
        })
    );
}

#[test]
fn inclusion_with_trailing_extra_hash_fails() {
    let (index, size, leaf, mut proof, root) = leaf_6_of_8();
    proof.push(root);
    let result = verify_inclusion(index, size, &leaf, &proof, &root);
    assert_eq!(
        result,
        Err(ProofError::WrongLength {
            got: 4,
            expected: 3
        })
    );
}

#[test]
fn inclusion_against_the_wrong_root_fails() {
    let (index, size, leaf, proof, _) = leaf_6_of_8();
    for wrong in [root(7), empty_root(), h(SOME_HASH)] {
        let result = verify_inclusion(index, size, &leaf, &proof, &wrong);
        assert!(matches!(result, Err(ProofError::RootMismatch { .. })));
    }
}

#[test]
fn inclusion_of_invalid_leaf_numbers_is_refused() {
    // `{0, 0, nil}` in `inclusionProofs`: leaf 0 does not exist, nor does any leaf of an
    // empty tree.
    assert_eq!(
        inclusion_proof_ranges(0, 0),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    // The probes of `TestVerifyInclusion` in transparency-dev/merkle, proof/verify_test.go:
    // (index, size) pairs with an empty proof that must not verify.
    for (index, size) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        let result = verify_inclusion(index, size, &h(SOME_HASH), &[], &empty_root());
        assert!(result.is_err(), "index {index} of {size}");
    }
    // `PathToCurrentRoot(9)` of the 8-leaf tree in google/certificate-transparency.
    let leaves = leaf_hashes();
    let mut source: &[Hash] = &leaves;
    assert!(inclusion_proof(8, 8, &mut source).is_err());
}

// Source: transparency-dev/merkle, proof/verify_test.go, `TestVerifyInclusionSingleEntry`:
// in a 1-entry tree the root is the leaf hash and the proof is empty.
#[test]
fn single_entry_tree_inclusion() {
    let hash = leaf_hash(b"data");
    assert_eq!(verify_inclusion(0, 1, &hash, &[], &hash), Ok(()));
    assert!(verify_inclusion(0, 1, &hash, &[], &empty_root()).is_err());
    assert!(verify_inclusion(0, 1, &empty_root(), &[], &hash).is_err());
}

// ---------------------------------------------------------------------------------------------
// Consistency proofs.
// ---------------------------------------------------------------------------------------------

/// A published consistency proof from tree size `size1` to `size2`.
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    proof: &'static [&'static str],
}

// Source: transparency-dev/merkle, proof/verify_test.go, `consistencyProofs`; the first four
// are also `kSHA256Proofs` in google/certificate-transparency,
// cpp/merkletree/merkle_tree_test.cc.
const CONSISTENCY_VECTORS: [ConsistencyVector; 5] = [
    ConsistencyVector {
        size1: 1,
        size2: 1,
        proof: &[],
    },
    ConsistencyVector {
        size1: 1,
        size2: 8,
        proof: &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    },
    ConsistencyVector {
        size1: 6,
        size2: 8,
        proof: &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    },
    ConsistencyVector {
        size1: 2,
        size2: 5,
        proof: &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    },
    ConsistencyVector {
        size1: 6,
        size2: 7,
        proof: &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    },
];

#[test]
fn generated_consistency_proofs_equal_the_published_ones() {
    let leaves = leaf_hashes();
    for vector in &CONSISTENCY_VECTORS {
        let mut source: &[Hash] = &leaves[..vector.size2 as usize];
        let got = consistency_proof(vector.size1, vector.size2, &mut source).expect("in order");
        assert_eq!(
            got,
            hashes(vector.proof),
            "{} to {}",
            vector.size1,
            vector.size2
        );
    }
}

#[test]
fn published_consistency_proofs_verify() {
    for vector in &CONSISTENCY_VECTORS {
        let (old, new) = (vector.size1, vector.size2);
        let result = verify_consistency(old, new, &root(old), &root(new), &hashes(vector.proof));
        assert_eq!(result, Ok(()), "{old} to {new}");
    }
}

/// Every pair of sizes 0 <= old <= new <= 8 of the reference tree is provably consistent
/// between the published roots.
#[test]
fn every_consistency_in_the_reference_tree_verifies_against_the_published_roots() {
    let leaves = leaf_hashes();
    for new in 0..=leaves.len() as u64 {
        for old in 0..=new {
            let mut source: &[Hash] = &leaves[..new as usize];
            let proof = consistency_proof(old, new, &mut source).expect("in order");
            let result = verify_consistency(old, new, &root(old), &root(new), &proof);
            assert_eq!(result, Ok(()), "{old} to {new}");
        }
    }
}

/// One probe of `verify_consistency`, named after the mutation that made it.
struct ConsistencyProbe {
    name: String,
    old: u64,
    new: u64,
    old_root: Hash,
    new_root: Hash,
    proof: Vec<Hash>,
}

/// The corruptions of `corruptConsistencyProof` in transparency-dev/merkle,
/// proof/verify_test.go, and of `VerifierConsistencyCheck` in
/// google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc. "WrongRoot" and empty
/// byte strings (not 32-byte hashes there) are stood in for by `SOME_HASH` and zeroes.
fn corrupt_consistency(old: u64, new: u64, old_root: Hash, new_root: Hash, proof: &[Hash]) {
    let probe = |name: &str, old: u64, new: u64, old_root: Hash, new_root: Hash, p: Vec<Hash>| {
        ConsistencyProbe {
            name: name.to_owned(),
            old,
            new,
            old_root,
            new_root,
            proof: p,
        }
    };
    let with = |front: &[Hash], back: &[Hash]| [front, proof, back].concat();
    let (garbage, wrong) = ([0u8; 32], h(SOME_HASH));
    let (r1, r2) = (old_root, new_root);
    let mut probes = vec![
        probe(
            "size1 - 1",
            old.wrapping_sub(1),
            new,
            r1,
            r2,
            proof.to_vec(),
        ),
        probe("size1 + 1", old + 1, new, r1, r2, proof.to_vec()),
        probe("size1 ^ 2", old ^ 2, new, r1, r2, proof.to_vec()),
        probe("size2 * 2", old, new * 2, r1, r2, proof.to_vec()),
        probe("size2 / 2", old, new / 2, r1, r2, proof.to_vec()),
        probe("wrong root1", old, new, wrong, r2, proof.to_vec()),
        probe("wrong root2", old, new, r1, wrong, proof.to_vec()),
        probe("swapped roots", old, new, r2, r1, proof.to_vec()),
        probe("empty proof", old, new, r1, r2, Vec::new()),
        probe("trailing garbage", old, new, r1, r2, with(&[], &[garbage])),
        probe("trailing root1", old, new, r1, r2, with(&[], &[r1])),
        probe("trailing root2", old, new, r1, r2, with(&[], &[r2])),
        probe("preceding garbage", old, new, r1, r2, with(&[garbage], &[])),
        probe("preceding root1", old, new, r1, r2, with(&[r1], &[])),
        probe("preceding root2", old, new, r1, r2, with(&[r2], &[])),
        probe(
            "preceding proof[0]",
            old,
            new,
            r1,
            r2,
            with(&proof[..1], &[]),
        ),
        probe(
            "trailing last hash",
            old,
            new,
            r1,
            r2,
            with(&[], &proof[proof.len() - 1..]),
        ),
    ];
    if let Some((_, shorter)) = proof.split_last() {
        probes.push(probe("truncated proof", old, new, r1, r2, shorter.to_vec()));
    }
    for position in 0..proof.len() {
        let mut flipped = proof.to_vec();
        flipped[position][0] ^= 16;
        let name = format!("modified proof[{position}] bit 4");
        probes.push(probe(&name, old, new, r1, r2, flipped));
        let mut replaced = proof.to_vec();
        replaced[position] = empty_root();
        let name = format!("proof[{position}] replaced by the empty root");
        probes.push(probe(&name, old, new, r1, r2, replaced));
    }
    for p in probes {
        let result = verify_consistency(p.old, p.new, &p.old_root, &p.new_root, &p.proof);
        assert!(result.is_err(), "{} accepted ({old} to {new})", p.name);
    }
}

#[test]
fn every_mutation_of_a_published_consistency_proof_is_refused() {
    for vector in &CONSISTENCY_VECTORS {
        // As in both sources, only non-trivial proofs are mutated.
        if vector.proof.is_empty() {
            continue;
        }
        let (old, new) = (vector.size1, vector.size2);
        corrupt_consistency(old, new, root(old), root(new), &hashes(vector.proof));
    }
}

/// The published proof from size 6 to size 8, and what it proves.
fn six_to_eight() -> (u64, u64, Hash, Hash, Vec<Hash>) {
    let vector = &CONSISTENCY_VECTORS[2];
    assert_eq!((vector.size1, vector.size2), (6, 8));
    (6, 8, root(6), root(8), hashes(vector.proof))
}

#[test]
fn consistency_with_old_size_off_by_one_fails() {
    let (old, new, old_root, new_root, proof) = six_to_eight();
    for wrong in [old - 1, old + 1] {
        let result = verify_consistency(wrong, new, &old_root, &new_root, &proof);
        assert!(result.is_err(), "old size {wrong}");
        // Even with the right root for the wrong size.
        let result = verify_consistency(wrong, new, &root(wrong), &new_root, &proof);
        assert!(result.is_err(), "old size {wrong} with its own root");
    }
}

#[test]
fn consistency_with_one_flipped_bit_fails() {
    let (old, new, old_root, new_root, proof) = six_to_eight();
    for position in 0..proof.len() {
        for bit in [0, 100, 255] {
            let mut flipped = proof.clone();
            flipped[position][bit / 8] ^= 1 << (bit % 8);
            let result = verify_consistency(old, new, &old_root, &new_root, &flipped);
            let mismatch = matches!(result, Err(ProofError::RootMismatch { .. }));
            assert!(mismatch, "bit {bit} of proof[{position}]");
        }
    }
}

#[test]
fn consistency_with_truncated_proof_fails() {
    let (old, new, old_root, new_root, proof) = six_to_eight();
    let result = verify_consistency(old, new, &old_root, &new_root, &proof[..2]);
    assert_eq!(
        result,
        Err(ProofError::WrongLength {
            got: 2,
            expected: 3
        })
    );
}

#[test]
fn consistency_with_trailing_extra_hash_fails() {
    let (old, new, old_root, new_root, mut proof) = six_to_eight();
    proof.push(new_root);
    let result = verify_consistency(old, new, &old_root, &new_root, &proof);
    assert_eq!(
        result,
        Err(ProofError::WrongLength {
            got: 4,
            expected: 3
        })
    );
}

#[test]
fn consistency_against_the_wrong_root_fails() {
    let (old, new, old_root, new_root, proof) = six_to_eight();
    for wrong in [root(7), empty_root(), h(SOME_HASH)] {
        let result = verify_consistency(old, new, &wrong, &new_root, &proof);
        assert!(
            matches!(result, Err(ProofError::RootMismatch { .. })),
            "old root"
        );
        let result = verify_consistency(old, new, &old_root, &wrong, &proof);
        assert!(
            matches!(result, Err(ProofError::RootMismatch { .. })),
            "new root"
        );
    }
}

/// (old size, new size, old root, new root, proof, whether it must verify).
type ConsistencyCase<'a> = (u64, u64, Hash, Hash, &'a [Hash], bool);

// Source: transparency-dev/merkle, proof/verify_test.go, `TestVerifyConsistency`, and
// google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc,
// `VerifyConsistencyProof`. The "don't care" roots there are 12-byte strings; two distinct
// 32-byte values stand in for them.
#[test]
fn consistency_edge_cases() {
    let (root1, root2, empty) = ([1u8; 32], [2u8; 32], empty_root());
    let some_proof = [empty];
    #[rustfmt::skip]
    let cases: [ConsistencyCase; 13] = [
        (0, 0, root1, root2, &[], false),
        (1, 1, root1, root2, &[], false),
        // Sizes that are always consistent.
        (0, 0, root1, root1, &[], true),
        (0, 1, root1, root2, &[], true),
        (1, 1, root2, root2, &[], true),
        // Time travel to the past.
        (1, 0, root1, root2, &[], false),
        (2, 1, root1, root2, &[], false),
        // Empty proof.
        (1, 2, root1, root2, &[], false),
        // Roots don't match.
        (0, 0, empty, root2, &[], false),
        (1, 1, empty, root2, &[], false),
        // Roots match but the proof is not empty.
        (0, 0, empty, empty, &some_proof, false),
        (0, 1, empty, empty, &some_proof, false),
        (1, 1, empty, empty, &some_proof, false),
    ];
    for (number, (old, new, old_root, new_root, proof, valid)) in cases.into_iter().enumerate() {
        let result = verify_consistency(old, new, &old_root, &new_root, proof);
        assert_eq!(
            result.is_ok(),
            valid,
            "case {number}: {old} to {new}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Proof shapes: which subtrees a proof is made of, for trees beyond the 8-leaf reference.
// ---------------------------------------------------------------------------------------------

/// A proof's nodes as published by transparency-dev/merkle: `(level, index)` node ids, of
/// which those at positions `rehash.0..rehash.1` are hashed together into one node (the
/// right edge of a tree that is not perfect).
type Shape = (&'static [(u32, u64)], Option<(usize, usize)>);

/// The leaf ranges a published shape stands for: node (level, index) covers leaves
/// `[index << level, (index + 1) << level)`, and a rehashed run covers the union of its
/// nodes.
fn shape_ranges((ids, rehash): Shape) -> Vec<(u64, u64)> {
    let ranges: Vec<(u64, u64)> = ids
        .iter()
        .map(|&(level, index)| (index << level, (index + 1) << level))
        .collect();
    let Some((begin, end)) = rehash else {
        return ranges;
    };
    let run = &ranges[begin..end];
    let start = run
        .iter()
        .map(|range| range.0)
        .min()
        .expect("non-empty rehash");
    let stop = run
        .iter()
        .map(|range| range.1)
        .max()
        .expect("non-empty rehash");
    [&ranges[..begin], &[(start, stop)], &ranges[end..]].concat()
}

// Source: transparency-dev/merkle, proof/proof_test.go, `TestInclusion`: (size, index, nodes).
#[rustfmt::skip]
const INCLUSION_SHAPES: [(u64, u64, Shape); 18] = [
    (1, 0, (&[], None)),
    (2, 0, (&[(0, 1)], None)),
    (2, 1, (&[(0, 0)], None)),
    (3, 1, (&[(0, 0), (0, 2)], None)),
    (7, 0, (&[(0, 1), (1, 1), (0, 6), (1, 2)], Some((2, 4)))),
    (7, 1, (&[(0, 0), (1, 1), (0, 6), (1, 2)], Some((2, 4)))),
    (7, 2, (&[(0, 3), (1, 0), (0, 6), (1, 2)], Some((2, 4)))),
    (7, 3, (&[(0, 2), (1, 0), (0, 6), (1, 2)], Some((2, 4)))),
    (7, 4, (&[(0, 5), (0, 6), (2, 0)], None)),
    (7, 5, (&[(0, 4), (0, 6), (2, 0)], None)),
    (7, 6, (&[(1, 2), (2, 0)], None)),
    (4, 2, (&[(0, 3), (1, 0)], None)),
    (5, 3, (&[(0, 2), (1, 0), (0, 4)], None)),
    (6, 3, (&[(0, 2), (1, 0), (1, 2)], None)),
    (6, 4, (&[(0, 5), (2, 0)], None)),
    (15, 10, (&[(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)], Some((2, 4)))),
    (31, 24, (&[(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)], Some((2, 4)))),
    (95, 81, (
        &[(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)],
        Some((3, 6)),
    )),
];

// Source: transparency-dev/merkle, proof/proof_test.go, `TestConsistency`: (size1, size2,
// nodes).
#[rustfmt::skip]
const CONSISTENCY_SHAPES: [(u64, u64, Shape); 25] = [
    (1, 2, (&[(0, 1)], None)),
    (1, 4, (&[(0, 1), (1, 1)], None)),
    (1, 6, (&[(0, 1), (1, 1), (1, 2)], None)),
    (2, 3, (&[(0, 2)], None)),
    (2, 8, (&[(1, 1), (2, 1)], None)),
    (3, 7, (&[(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)], Some((3, 5)))),
    (4, 7, (&[(0, 6), (1, 2)], Some((0, 2)))),
    (5, 7, (&[(0, 4), (0, 5), (0, 6), (2, 0)], None)),
    (6, 7, (&[(1, 2), (0, 6), (2, 0)], None)),
    (7, 8, (&[(0, 6), (0, 7), (1, 2), (2, 0)], None)),
    (1, 1, (&[], None)),
    (2, 2, (&[], None)),
    (3, 3, (&[], None)),
    (4, 4, (&[], None)),
    (5, 5, (&[], None)),
    (7, 7, (&[], None)),
    (8, 8, (&[], None)),
    (2, 4, (&[(1, 1)], None)),
    (3, 5, (&[(0, 2), (0, 3), (1, 0), (0, 4)], None)),
    (3, 6, (&[(0, 2), (0, 3), (1, 0), (1, 2)], None)),
    (4, 6, (&[(1, 2)], None)),
    (1, 7, (&[(0, 1), (1, 1), (0, 6), (1, 2)], Some((2, 4)))),
    (10, 15, (&[(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)], Some((2, 4)))),
    (24, 31, (&[(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)], Some((1, 4)))),
    (81, 95, (
        &[(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)],
        Some((4, 7)),
    )),
];

#[test]
fn inclusion_proof_shapes_match_transparency_dev() {
    for (size, index, shape) in INCLUSION_SHAPES {
        let got = inclusion_proof_ranges(index, size).expect("in range");
        assert_eq!(got, shape_ranges(shape), "index {index} of {size}");
    }
    // The error cases of the same table.
    for (size, index) in [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8)] {
        let result = inclusion_proof_ranges(index, size);
        assert_eq!(result, Err(ProofError::IndexOutOfRange { index, size }));
    }
}

#[test]
fn consistency_proof_shapes_match_transparency_dev() {
    for (old, new, shape) in CONSISTENCY_SHAPES {
        let got = consistency_proof_ranges(old, new).expect("in order");
        assert_eq!(got, shape_ranges(shape), "{old} to {new}");
    }
    // The error cases of the same table.
    for (old, new) in [(5, 0), (9, 8)] {
        let result = consistency_proof_ranges(old, new);
        assert_eq!(result, Err(ProofError::SizesOutOfOrder { old, new }));
    }
}

// ---------------------------------------------------------------------------------------------
// Accumulated vectors over trees of up to 130 leaves.
// ---------------------------------------------------------------------------------------------

// Source: transparency-dev/merkle, testonly/vectors_test.go, which reproduces the "Subtree
// Test Vectors" appendix of draft-ietf-plants-merkle-tree-certs: over the tree D with
// d[i] = [i] for i < 130, a rolling SHA-256 of one text line per valid subtree [start, end)
// (start a multiple of the smallest power of two >= end - start), in order of end and then
// start.
const SUBTREE_VECTOR_MAX: u64 = 130;
const SUBTREE_HASH_VECTOR: &str =
    "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f";
const SUBTREE_INCLUSION_PROOF_VECTOR: &str =
    "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f";

/// `isSubtreeValid` of transparency-dev/merkle, testonly/tree.go, for `start < end`.
fn is_subtree_valid(start: u64, end: u64) -> bool {
    start == 0 || start % (end - start).next_power_of_two() == 0
}

fn valid_subtrees() -> impl Iterator<Item = (u64, u64)> {
    (1..=SUBTREE_VECTOR_MAX)
        .flat_map(|end| (0..end).map(move |start| (start, end)))
        .filter(|&(start, end)| is_subtree_valid(start, end))
}

fn subtree_vector_leaves() -> Vec<Hash> {
    (0..SUBTREE_VECTOR_MAX)
        .map(|i| leaf_hash(&[i as u8]))
        .collect()
}

#[test]
fn accumulated_subtree_hash_vector() {
    let leaves = subtree_vector_leaves();
    let mut rolling = Sha256::new();
    for (start, end) in valid_subtrees() {
        let subtree = root_of(&leaves[start as usize..end as usize]);
        rolling.update(format!("[{start}, {end}) {}\n", hex::encode(subtree)));
    }
    assert_eq!(hex::encode(rolling.finalize()), SUBTREE_HASH_VECTOR);
}

/// The inclusion proof of a leaf in a subtree is its inclusion proof in the tree made of
/// that subtree's leaves (`TestSubtreeInclusionProof` in transparency-dev/merkle,
/// testonly/tree_test.go); with start 0 these are ordinary inclusion proofs at every size.
#[test]
fn accumulated_subtree_inclusion_proof_vector() {
    let leaves = subtree_vector_leaves();
    let mut rolling = Sha256::new();
    for (start, end) in valid_subtrees() {
        let subtree = &leaves[start as usize..end as usize];
        for index in start..end {
            let mut source: &[Hash] = subtree;
            let proof = inclusion_proof(index - start, end - start, &mut source).expect("in range");
            let mut line = format!("{index} [{start}, {end})");
            for hash in &proof {
                line.push(' ');
                line.push_str(&hex::encode(hash));
            }
            line.push('\n');
            rolling.update(line);
        }
    }
    assert_eq!(
        hex::encode(rolling.finalize()),
        SUBTREE_INCLUSION_PROOF_VECTOR
    );
}
