//! Tampering by an attacker with database access, on SQLite and PostgreSQL: each change to
//! stored entries or tree heads is found by `verify_ledger`, which names the first bad seq.
//!
//! The attacker first switches off the append-only triggers (SQLite: `DROP TRIGGER`,
//! PostgreSQL: `ALTER TABLE ... DISABLE TRIGGER USER`). Every ledger here has 20 entries
//! appended in batches of 3, 4, 5, 6 and 2, so signed tree heads sit at sizes 3, 7, 12, 18
//! and 20.

mod common;

use ascribe_ledger::merkle::{leaf_hash, root_of};
use ascribe_ledger::{Hash, TreeHead};
use ascribe_store::{AppendedEntry, PendingEntry, SqlValue, TreeHeadPolicy, VerifyReport};
use common::{
    all_entries, all_heads, attack, disable_append_only_guards, forger, init_ledger,
    on_each_backend, open_ledger, root_hex, signer, verify, Kind, TestClock, TestDb, ORIGIN,
};
use serde_json::json;

const BATCHES: [u64; 5] = [3, 4, 5, 6, 2];
const HEAD_SIZES: [u64; 5] = [3, 7, 12, 18, 20];
const N: u64 = 20;

struct Fixture {
    db: TestDb,
    clock: TestClock,
    appended: Vec<AppendedEntry>,
}

impl Fixture {
    fn text(&self, seq: u64) -> String {
        let bytes = self.appended[seq as usize].entry.to_canonical_bytes();
        String::from_utf8(bytes.expect("canonical")).expect("utf-8")
    }

    fn leaves(&self) -> Vec<Hash> {
        self.appended.iter().map(|a| a.leaf_hash).collect()
    }
}

/// A fresh 20-entry ledger that verifies, with the attacker's triggers already switched off.
fn new_fixture(kind: Kind) -> Fixture {
    let db = TestDb::new(kind);
    let clock = TestClock::new();
    let mut ledger = init_ledger(&db, &clock, TreeHeadPolicy::EveryBatch);
    let mut appended = Vec::new();
    let mut seq = 0u64;
    for size in BATCHES {
        clock.advance_micros(1_000_000);
        let batch: Vec<_> = (seq..seq + size)
            .map(|n| {
                let body = json!({"model": format!("m-{n:02}"), "note": "weights abcdef"});
                PendingEntry::new("model.registered", "cli:operator", body)
            })
            .collect();
        for outcome in ledger.append_batch(&batch).expect("batch commits") {
            appended.push(outcome.expect("appended"));
        }
        seq += size;
    }
    let sizes: Vec<u64> = all_heads(&db).iter().map(|head| head.size).collect();
    assert_eq!(sizes, HEAD_SIZES);
    let report = verify(&db);
    assert!(report.ok, "untouched ledger: {report:?}");
    assert_eq!(report.entries, N);
    disable_append_only_guards(&db);
    assert!(verify(&db).ok, "switching the triggers off changes no data");
    Fixture {
        db,
        clock,
        appended,
    }
}

/// Asserts a failed report naming `seq`, whose error contains `words`.
fn assert_names_seq(report: &VerifyReport, seq: u64, words: &str) {
    assert!(!report.ok, "tampering went unnoticed: {report:?}");
    assert_eq!(report.first_bad_seq, Some(seq), "{report:?}");
    assert_eq!(report.entries, seq, "{report:?}");
    assert_eq!(report.root, None);
    let error = report.error.as_deref().expect("an error");
    assert!(error.contains(words), "error {error:?} lacks {words:?}");
}

/// Asserts a failed report that blames a tree head rather than an entry.
fn assert_names_head(report: &VerifyReport, words: &[&str]) {
    assert!(!report.ok, "tampering went unnoticed: {report:?}");
    assert_eq!(report.first_bad_seq, None, "{report:?}");
    assert_eq!(report.root, None);
    let error = report.error.as_deref().expect("an error");
    for word in words {
        assert!(error.contains(word), "error {error:?} lacks {word:?}");
    }
}

fn set_entry(fixture: &Fixture, seq: u64, text: &str) {
    attack(
        &fixture.db,
        &[(
            "UPDATE ledger_entries SET entry = $1 WHERE seq = $2",
            vec![text.into(), seq.into()],
        )],
    );
}

#[test]
fn a_changed_byte_names_its_seq() {
    on_each_backend(|kind| {
        // A changed letter in the body: still canonical JSON, but not the hashed bytes.
        let fixture = new_fixture(kind);
        let forged = fixture.text(9).replacen("abcdef", "abcdeF", 1);
        assert_eq!(forged.len(), fixture.text(9).len());
        set_entry(&fixture, 9, &forged);
        let report = verify(&fixture.db);
        assert_names_seq(&report, 9, "entry seq 9: stored leaf hash does not match");

        // A changed byte of the JSON structure: not even an entry any more.
        let fixture = common_fixture_changed_byte(kind, 9, b'"', b'\'');
        assert_names_seq(
            &verify(&fixture.db),
            9,
            "entry seq 9: entry is not valid JSON",
        );

        // A byte of the first entry.
        let fixture = common_fixture_changed_byte(kind, 0, b'0', b'5');
        assert_names_seq(&verify(&fixture.db), 0, "entry seq 0");
    });
}

/// A fixture whose entry `seq` has its first `from` byte changed to `to`.
fn common_fixture_changed_byte(kind: Kind, seq: u64, from: u8, to: u8) -> Fixture {
    let fixture = new_fixture(kind);
    let mut bytes = fixture.text(seq).into_bytes();
    let position = bytes.iter().position(|&b| b == from).expect("byte present");
    bytes[position] = to;
    set_entry(&fixture, seq, &String::from_utf8(bytes).expect("utf-8"));
    fixture
}

#[test]
fn a_changed_entry_with_its_leaf_hash_rewritten_names_the_first_uncovered_seq() {
    on_each_backend(|kind| {
        // (changed seq, expected first bad seq: the size of the last head before it)
        for (seq, first_bad) in [(9, 7), (7, 7), (6, 3), (0, 0), (2, 0), (19, 18)] {
            let fixture = new_fixture(kind);
            let original = fixture.text(seq);
            let forged = original.replacen(&format!("m-{seq:02}"), "m-99", 1);
            assert_ne!(forged, original);
            let forged_leaf = leaf_hash(forged.as_bytes());
            attack(
                &fixture.db,
                &[(
                    "UPDATE ledger_entries SET entry = $1, leaf_hash = $2 WHERE seq = $3",
                    vec![
                        forged.clone().into(),
                        forged_leaf.to_vec().into(),
                        seq.into(),
                    ],
                )],
            );
            let next_head = HEAD_SIZES
                .iter()
                .find(|&&size| size > seq)
                .expect("covered");
            let report = verify(&fixture.db);
            let words = format!("an entry in seq {first_bad}..{next_head} was changed");
            assert_names_seq(&report, first_bad, &words);
        }
    });
}

#[test]
fn a_deleted_row_names_the_gap() {
    on_each_backend(|kind| {
        for seq in [9, 0, 18] {
            let fixture = new_fixture(kind);
            attack(
                &fixture.db,
                &[(
                    "DELETE FROM ledger_entries WHERE seq = $1",
                    vec![seq.into()],
                )],
            );
            let words = format!(
                "entry seq {seq} is missing: the next stored row is seq {}",
                seq + 1
            );
            assert_names_seq(&verify(&fixture.db), seq, &words);
        }
    });
}

#[test]
fn swapped_rows_name_the_lower_seq() {
    on_each_backend(|kind| {
        for (low, high) in [(5, 13), (0, 1), (18, 19)] {
            let fixture = new_fixture(kind);
            let rows = all_entries(&fixture.db);
            let update = "UPDATE ledger_entries SET time = $1, kind = $2, actor = $3, entry = $4, \
                          leaf_hash = $5 WHERE seq = $6";
            let values = |from: usize, to: u64| -> Vec<SqlValue> {
                let row = &rows[from];
                vec![
                    row.time.clone().into(),
                    row.kind.clone().into(),
                    row.actor.clone().into(),
                    row.entry.clone().into(),
                    row.leaf_hash.to_vec().into(),
                    to.into(),
                ]
            };
            attack(
                &fixture.db,
                &[
                    (update, values(high as usize, low)),
                    (update, values(low as usize, high)),
                ],
            );
            let words = format!("row seq {low} holds the entry of seq {high}: rows were moved");
            assert_names_seq(&verify(&fixture.db), low, &words);
        }
    });
}

#[test]
fn a_truncated_tail_names_the_new_length() {
    on_each_backend(|kind| {
        for removed in [1, 2, 3, 13, 20] {
            let fixture = new_fixture(kind);
            let new_length = N - removed;
            attack(
                &fixture.db,
                &[(
                    "DELETE FROM ledger_entries WHERE seq >= $1",
                    vec![new_length.into()],
                )],
            );
            assert_eq!(all_entries(&fixture.db).len() as u64, new_length);
            let report = verify(&fixture.db);
            assert_names_seq(&report, new_length, "the tail was removed");
            // The head named is the first one beyond the remaining entries.
            let head = HEAD_SIZES
                .iter()
                .find(|&&size| size > new_length)
                .expect("a head");
            let words = format!("signed tree head at size {head} covers entries");
            assert!(
                report.error.as_deref().expect("error").contains(&words),
                "{report:?}"
            );
        }
    });
}

#[test]
fn a_tree_head_not_signed_by_the_ledger_key_is_named() {
    on_each_backend(|kind| {
        // A new head at a size that had none, with the right root, signed by another key.
        let fixture = new_fixture(kind);
        let head = TreeHead {
            origin: ORIGIN.to_owned(),
            size: 5,
            root: root_of(&fixture.leaves()[..5]),
        };
        insert_head(&fixture, &head, &forger().sign_tree_head(&head).note);
        let report = verify(&fixture.db);
        assert_names_head(
            &report,
            &[
                "signed tree head filed at size 5",
                "no signature from key `ascribe.test",
            ],
        );

        // The latest head's note replaced by one from another key.
        let fixture = fixture_with_latest_note(kind, |head| forger().sign_tree_head(head).note);
        let report = verify(&fixture.db);
        assert_names_head(
            &report,
            &["signed tree head filed at size 20", "no signature"],
        );

        // The latest head's note made to state another root, keeping the real signature.
        let fixture = fixture_with_latest_note(kind, |head| {
            let note = signer().sign_tree_head(head).note;
            let forged = TreeHead {
                root: [0u8; 32],
                ..head.clone()
            };
            note.replacen(&head.body_text(), &forged.body_text(), 1)
        });
        let report = verify(&fixture.db);
        assert_names_head(&report, &["filed at size 20", "does not verify"]);

        // A genuine head filed under another size.
        let fixture = new_fixture(kind);
        attack(
            &fixture.db,
            &[(
                "UPDATE ledger_tree_heads SET tree_size = 13 WHERE tree_size = 12",
                vec![],
            )],
        );
        let report = verify(&fixture.db);
        assert_names_head(
            &report,
            &["signed tree head filed at size 13 states size 12"],
        );
    });
}

fn insert_head(fixture: &Fixture, head: &TreeHead, note: &str) {
    attack(
        &fixture.db,
        &[(
            "INSERT INTO ledger_tree_heads (tree_size, root, signed_at, note) \
             VALUES ($1, $2, $3, $4)",
            vec![
                head.size.into(),
                head.root.to_vec().into(),
                "2027-01-15T08:00:05.000000Z".into(),
                note.into(),
            ],
        )],
    );
}

fn fixture_with_latest_note(kind: Kind, note: impl Fn(&TreeHead) -> String) -> Fixture {
    let fixture = new_fixture(kind);
    let head = TreeHead {
        origin: ORIGIN.to_owned(),
        size: N,
        root: root_of(&fixture.leaves()),
    };
    attack(
        &fixture.db,
        &[(
            "UPDATE ledger_tree_heads SET note = $1 WHERE tree_size = $2",
            vec![note(&head).into(), N.into()],
        )],
    );
    fixture
}

/// A well-formed next entry, as an attacker who knows the format would write it.
fn attacker_entry(fixture: &Fixture) -> (String, Hash) {
    let last = &fixture.appended[N as usize - 1].entry;
    let entry = ascribe_ledger::Entry {
        seq: N,
        time: last.time,
        kind: "alias.rotated".to_owned(),
        actor: "admin".to_owned(),
        body: json!({"alias": "prod", "to": "attacker/model-v6"}),
    };
    let bytes = entry.to_canonical_bytes().expect("canonical");
    let leaf = leaf_hash(&bytes);
    let text = String::from_utf8(bytes).expect("utf-8");
    attack(
        &fixture.db,
        &[(
            "INSERT INTO ledger_entries (seq, time, kind, actor, entry, leaf_hash) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                N.into(),
                entry.time.to_string().into(),
                entry.kind.as_str().into(),
                entry.actor.as_str().into(),
                text.clone().into(),
                leaf.to_vec().into(),
            ],
        )],
    );
    (text, leaf)
}

/// Documented behaviour: an entry that no signed head covers yet is part of the ledger (the
/// writer may simply not have signed yet), so `verify` accepts it and reports a tree larger
/// than the latest signed head; the next head a writer signs covers it. Only heads prove
/// anything: a head that is not signed by the ledger key is named.
#[test]
fn a_row_appended_behind_the_writers_back_is_an_unsigned_tail() {
    on_each_backend(|kind| {
        let fixture = new_fixture(kind);
        let (_, leaf) = attacker_entry(&fixture);
        let mut leaves = fixture.leaves();
        leaves.push(leaf);
        let report = verify(&fixture.db);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.tree_size), (N + 1, N + 1));
        assert_eq!(report.heads_checked, 5);
        assert_eq!(report.root, Some(root_hex(&leaves)));
        let latest = all_heads(&fixture.db).last().expect("heads").size;
        assert_eq!(latest, N, "the extra row is not covered by any signed head");

        // A writer that comes next takes the row as committed and signs over it.
        let mut ledger = open_ledger(&fixture.db, &fixture.clock, TreeHeadPolicy::EveryBatch);
        let next = PendingEntry::new("model.registered", "cli:operator", json!({"n": 21}));
        let appended = ledger.append_batch(&[next]).expect("commits");
        let appended = appended.into_iter().next().expect("one").expect("appended");
        assert_eq!(appended.entry.seq, N + 1);
        leaves.push(appended.leaf_hash);
        let report = verify(&fixture.db);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.heads_checked), (N + 2, 6));
        assert_eq!(report.root, Some(root_hex(&leaves)));

        // The same row with a head over it that nobody signed: the head is named.
        let fixture = new_fixture(kind);
        let (_, leaf) = attacker_entry(&fixture);
        let mut leaves = fixture.leaves();
        leaves.push(leaf);
        let head = TreeHead {
            origin: ORIGIN.to_owned(),
            size: N + 1,
            root: root_of(&leaves),
        };
        insert_head(&fixture, &head, &format!("{}\n", head.body_text()));
        let report = verify(&fixture.db);
        assert_names_head(&report, &["signed tree head filed at size 21", "malformed"]);
    });
}

#[test]
fn a_changed_indexed_column_names_its_seq() {
    on_each_backend(|kind| {
        let columns = [
            ("kind", "model.deleted"),
            ("actor", "cli:intruder"),
            ("time", "2027-01-15T08:00:02.500000Z"),
        ];
        for (column, value) in columns {
            let fixture = new_fixture(kind);
            let sql = format!("UPDATE ledger_entries SET {column} = $1 WHERE seq = $2");
            attack(&fixture.db, &[(&sql, vec![value.into(), 11u64.into()])]);
            let stored = &all_entries(&fixture.db)[11];
            assert_eq!(
                stored.entry,
                fixture.text(11),
                "the entry itself is unchanged"
            );
            let words = "entry seq 11: indexed columns (time, kind, actor) differ from the entry";
            assert_names_seq(&verify(&fixture.db), 11, words);
        }
    });
}
