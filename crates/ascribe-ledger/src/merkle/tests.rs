//! Unit tests of the Merkle tree; known-answer vectors live in `tests/`.

use super::*;

#[test]
fn frontier_root_equals_recursive_root() {
    let leaves: Vec<Hash> = (0u8..20).map(|i| leaf_hash(&[i])).collect();
    for size in 0..=leaves.len() {
        let mut source: &[Hash] = &leaves[..size];
        let frontier = Frontier::from_source(size as u64, &mut source).expect("in range");
        assert_eq!(frontier.root(), root_of(&leaves[..size]), "size {size}");
    }
}
