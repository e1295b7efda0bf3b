//! A streaming check of a whole ledger that names the first entry that is wrong.
//!
//! The store feeds [`AuditTrail`] its rows in `seq` order together with the signed tree heads
//! it holds; the trail re-derives everything from the entry bytes alone:
//!
//! 1. every `seq` from 0 is present exactly once (a gap is a deleted row);
//! 2. each entry is canonical, valid, and states the `seq` of its row (a mismatch is a moved
//!    or reordered row);
//! 3. entry times never go backwards along `seq`;
//! 4. the leaf hash recomputed from the bytes equals the stored one (a naive edit);
//! 5. at each signed tree head's size, the recomputed root equals the signed root and the
//!    signature verifies with the trusted key (an edit that also rewrote the stored hashes,
//!    or a forged head);
//! 6. no signed tree head is larger than the ledger (a truncated tail).
//!
//! Check 5 can only say that some entry between the previous head and this one changed, so
//! the failure names the first `seq` not yet covered by a verified head.

use crate::entry::Entry;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::note::NoteVerifier;
use crate::Timestamp;

/// What a successful check covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailSummary {
    /// Number of entries read.
    pub entries: u64,
    /// Size of the recomputed tree (equal to `entries`).
    pub tree_size: u64,
    /// Recomputed root over all entries.
    pub root: Hash,
    /// Number of signed tree heads whose root and signature were checked.
    pub heads_checked: u64,
}

/// The first thing found wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TrailFailure {
    /// The first `seq` that is missing, changed or not covered by a valid head; `None` when
    /// the fault is in a tree head itself (a forged signature) rather than in an entry.
    pub first_bad_seq: Option<u64>,
    /// What differs, in words.
    pub reason: String,
}

impl TrailFailure {
    fn at(seq: u64, reason: String) -> TrailFailure {
        TrailFailure {
            first_bad_seq: Some(seq),
            reason,
        }
    }
}

/// A stored signed tree head as the store hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHead {
    /// The tree size the store filed the head under.
    pub size: u64,
    /// The note text.
    pub note: String,
}

/// Recomputes a ledger entry by entry; see the module documentation for the checks.
pub struct AuditTrail {
    verifier: NoteVerifier,
    heads: Vec<StoredHead>,
    next_head: usize,
    covered_by_heads: u64,
    frontier: Frontier,
    previous_time: Option<Timestamp>,
}

impl AuditTrail {
    /// Starts a check with the trusted public key and every stored head.
    pub fn new(verifier: NoteVerifier, mut heads: Vec<StoredHead>) -> AuditTrail {
        heads.sort_by_key(|head| head.size);
        AuditTrail {
            verifier,
            heads,
            next_head: 0,
            covered_by_heads: 0,
            frontier: Frontier::new(),
            previous_time: None,
        }
    }

    /// Checks the next stored row and returns its decoded entry.
    ///
    /// `stored_leaf_hash` is the leaf hash the store keeps beside the bytes, if it keeps one.
    pub fn push(
        &mut self,
        row_seq: u64,
        bytes: &[u8],
        stored_leaf_hash: Option<&Hash>,
    ) -> Result<Entry, TrailFailure> {
        // Heads filed at size 0 are checked before the first entry, against the empty root.
        self.check_heads_at_current_size()?;
        let expected = self.frontier.size();
        if row_seq != expected {
            return Err(TrailFailure::at(
                expected,
                format!("entry seq {expected} is missing: the next stored row is seq {row_seq}"),
            ));
        }
        let entry = Entry::from_canonical_bytes(bytes)
            .map_err(|error| TrailFailure::at(row_seq, format!("entry seq {row_seq}: {error}")))?;
        self.check_position(row_seq, &entry)?;

        let leaf = leaf_hash(bytes);
        if stored_leaf_hash.is_some_and(|stored| *stored != leaf) {
            return Err(TrailFailure::at(
                row_seq,
                format!("entry seq {row_seq}: stored leaf hash does not match the entry bytes"),
            ));
        }
        self.frontier.push(leaf);
        self.check_heads_at_current_size()?;
        Ok(entry)
    }

    fn check_position(&mut self, row_seq: u64, entry: &Entry) -> Result<(), TrailFailure> {
        if entry.seq != row_seq {
            return Err(TrailFailure::at(
                row_seq,
                format!(
                    "row seq {row_seq} holds the entry of seq {}: rows were moved",
                    entry.seq
                ),
            ));
        }
        if self
            .previous_time
            .is_some_and(|previous| entry.time < previous)
        {
            return Err(TrailFailure::at(
                row_seq,
                format!(
                    "entry seq {row_seq}: time {} is before the previous entry's",
                    entry.time
                ),
            ));
        }
        self.previous_time = Some(entry.time);
        Ok(())
    }

    fn check_heads_at_current_size(&mut self) -> Result<(), TrailFailure> {
        let size = self.frontier.size();
        while let Some(stored) = self
            .heads
            .get(self.next_head)
            .filter(|head| head.size <= size)
        {
            let head = self.verify_head(stored)?;
            if head.root != self.frontier.root() {
                let first = self.covered_by_heads;
                return Err(TrailFailure::at(
                    first,
                    format!(
                        "root over the first {size} entries does not match the signed tree \
                         head at size {size}: an entry in seq {first}..{size} was changed"
                    ),
                ));
            }
            self.covered_by_heads = size;
            self.next_head += 1;
        }
        Ok(())
    }

    fn verify_head(&self, stored: &StoredHead) -> Result<crate::TreeHead, TrailFailure> {
        let head = self
            .verifier
            .verify_note(&stored.note)
            .map_err(|error| TrailFailure {
                first_bad_seq: None,
                reason: format!("signed tree head filed at size {}: {error}", stored.size),
            })?;
        if head.size != stored.size {
            return Err(TrailFailure {
                first_bad_seq: None,
                reason: format!(
                    "signed tree head filed at size {} states size {}",
                    stored.size, head.size
                ),
            });
        }
        Ok(head)
    }

    /// Ends the check once every row was pushed.
    pub fn finish(mut self) -> Result<TrailSummary, TrailFailure> {
        self.check_heads_at_current_size()?;
        let size = self.frontier.size();
        if let Some(stored) = self.heads.get(self.next_head) {
            self.verify_head(stored)?;
            return Err(TrailFailure::at(
                size,
                format!(
                    "signed tree head at size {} covers entries the ledger no longer has: it \
                     ends before seq {size}; the tail was removed",
                    stored.size
                ),
            ));
        }
        Ok(TrailSummary {
            entries: size,
            tree_size: size,
            root: self.frontier.root(),
            heads_checked: self.next_head as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{NoteSigner, TreeHead};
    use serde_json::json;

    const ORIGIN: &str = "ascribe.test/ledger";

    fn entry_bytes(seq: u64, micros: i64) -> Vec<u8> {
        let entry = Entry {
            seq,
            time: Timestamp::from_unix_micros(1_800_000_000_000_000 + micros),
            kind: "test.appended".into(),
            actor: "tester".into(),
            body: json!({"n": seq}),
        };
        entry.to_canonical_bytes().expect("valid entry")
    }

    struct Ledger {
        rows: Vec<(u64, Vec<u8>, Hash)>,
        heads: Vec<StoredHead>,
    }

    /// Ten entries with signed heads at sizes 4 and 10.
    fn ledger(signer: &NoteSigner) -> Ledger {
        let rows: Vec<_> = (0..10)
            .map(|seq| {
                let bytes = entry_bytes(seq, seq as i64);
                let leaf = leaf_hash(&bytes);
                (seq, bytes, leaf)
            })
            .collect();
        let heads = [4usize, 10]
            .iter()
            .map(|&size| {
                let leaves: Vec<Hash> = rows[..size].iter().map(|row| row.2).collect();
                let head = TreeHead {
                    origin: ORIGIN.into(),
                    size: size as u64,
                    root: root(&leaves),
                };
                StoredHead {
                    size: size as u64,
                    note: signer.sign_tree_head(&head).note,
                }
            })
            .collect();
        Ledger { rows, heads }
    }

    fn root(leaves: &[Hash]) -> Hash {
        crate::merkle::root_of(leaves)
    }

    fn check(ledger: &Ledger, trusted: &NoteSigner) -> Result<TrailSummary, TrailFailure> {
        let mut trail = AuditTrail::new(trusted.verifier(), ledger.heads.clone());
        for (seq, bytes, leaf) in &ledger.rows {
            trail.push(*seq, bytes, Some(leaf))?;
        }
        trail.finish()
    }

    fn signer() -> NoteSigner {
        NoteSigner::from_seed(ORIGIN, [3u8; 32])
    }

    #[test]
    fn untouched_ledger_passes() {
        let summary = check(&ledger(&signer()), &signer()).expect("passes");
        assert_eq!(summary.entries, 10);
        assert_eq!(summary.heads_checked, 2);
    }

    #[test]
    fn changed_byte_names_its_seq() {
        let mut ledger = ledger(&signer());
        let bytes = &mut ledger.rows[6].1;
        let position = bytes.iter().position(|&b| b == b'6').expect("has a 6");
        bytes[position] = b'7';
        let failure = check(&ledger, &signer()).expect_err("tampered");
        assert_eq!(failure.first_bad_seq, Some(6));
    }

    #[test]
    fn rewritten_leaf_hash_is_caught_by_the_head() {
        let mut ledger = ledger(&signer());
        let original = String::from_utf8(entry_bytes(6, 6)).expect("utf-8");
        let forged = original.replace("\"n\":6", "\"n\":60").into_bytes();
        ledger.rows[6].2 = leaf_hash(&forged);
        ledger.rows[6].1 = forged;
        let failure = check(&ledger, &signer()).expect_err("tampered");
        assert_eq!(failure.first_bad_seq, Some(4), "{failure}");
        assert!(failure.reason.contains("seq 4..10"), "{failure}");
    }

    #[test]
    fn deleted_row_names_the_gap() {
        let mut ledger = ledger(&signer());
        ledger.rows.remove(3);
        assert_eq!(
            check(&ledger, &signer()).expect_err("gap").first_bad_seq,
            Some(3)
        );
    }

    #[test]
    fn swapped_rows_name_the_first() {
        let mut ledger = ledger(&signer());
        let (left, right) = ledger.rows.split_at_mut(5);
        std::mem::swap(&mut left[2].1, &mut right[2].1);
        std::mem::swap(&mut left[2].2, &mut right[2].2);
        assert_eq!(
            check(&ledger, &signer()).expect_err("moved").first_bad_seq,
            Some(2)
        );
    }

    #[test]
    fn truncated_tail_is_found() {
        let mut ledger = ledger(&signer());
        ledger.rows.truncate(8);
        let failure = check(&ledger, &signer()).expect_err("truncated");
        assert_eq!(failure.first_bad_seq, Some(8));
    }

    #[test]
    fn head_of_the_empty_tree_is_checked_against_the_empty_root() {
        let signer = signer();
        let empty = TreeHead {
            origin: ORIGIN.into(),
            size: 0,
            root: crate::merkle::empty_root(),
        };
        let mut ledger = ledger(&signer);
        ledger.heads.insert(
            0,
            StoredHead {
                size: 0,
                note: signer.sign_tree_head(&empty).note,
            },
        );
        assert_eq!(check(&ledger, &signer).expect("passes").heads_checked, 3);

        let wrong = TreeHead {
            root: [1; 32],
            ..empty
        };
        ledger.heads[0] = StoredHead {
            size: 0,
            note: signer.sign_tree_head(&wrong).note,
        };
        assert_eq!(
            check(&ledger, &signer)
                .expect_err("wrong root")
                .first_bad_seq,
            Some(0)
        );
    }

    #[test]
    fn head_signed_by_another_key_is_refused() {
        let forger = NoteSigner::from_seed(ORIGIN, [4u8; 32]);
        let failure = check(&ledger(&forger), &signer()).expect_err("forged");
        assert_eq!(failure.first_bad_seq, None);
        assert!(
            failure.reason.contains("no signature from key"),
            "{failure}"
        );
    }
}
