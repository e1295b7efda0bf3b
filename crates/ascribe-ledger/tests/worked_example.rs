//! The worked example of `docs/ledger.md`: if this test changes, the document must too.

use ascribe_ledger::merkle::{leaf_hash, root_of};
use ascribe_ledger::{Entry, NoteSigner, Timestamp, TreeHead};
use serde_json::json;

fn entry(seq: u64, time: &str, kind: &str, body: serde_json::Value) -> Vec<u8> {
    let time = Timestamp::parse(time).expect("canonical time");
    let entry = Entry {
        seq,
        time,
        kind: kind.into(),
        actor: "cli:root".into(),
        body,
    };
    entry.to_canonical_bytes().expect("valid entry")
}

#[test]
fn worked_example_matches_the_document() {
    let token = "5e884898da28047151d0e56f8dc2b0b2a1e8b8f1a3a3f1f5f0e0a0b0c0d0e0f0";
    let body = json!({"name": "ops", "role": "admin", "token_sha256": token});
    let first = entry(0, "2026-12-03T16:31:37.123456Z", "key.created", body);
    let second = entry(
        1,
        "2026-12-03T16:31:38.000000Z",
        "key.revoked",
        json!({"name": "ops"}),
    );
    assert_eq!(
        String::from_utf8(first.clone()).expect("utf-8"),
        format!(
            "{{\"actor\":\"cli:root\",\"body\":{{\"name\":\"ops\",\"role\":\"admin\",\
             \"token_sha256\":\"{token}\"}},\"kind\":\"key.created\",\"seq\":0,\
             \"time\":\"2026-12-03T16:31:37.123456Z\"}}"
        )
    );

    let leaves = [leaf_hash(&first), leaf_hash(&second)];
    assert_eq!(
        hex::encode(leaves[0]),
        "b6a1cce2dcf7897a80b2180199fae7b4406b176d80769dd3c05fa96d06add5eb"
    );
    assert_eq!(
        hex::encode(leaves[1]),
        "7e0ba52a3645a385230b3d8ca43999fce85c5b8c2b8746dc561a27d440840f14"
    );
    let root = root_of(&leaves);
    assert_eq!(
        hex::encode(root),
        "37f6921a9da053d80d0f0d143155e6b5e270897064482c1601dbdbd2fd6bb754"
    );

    let signer = NoteSigner::from_seed("example.com/ascribe", [0x42; 32]);
    assert_eq!(
        signer.private_key_text(),
        "PRIVATE+KEY+example.com/ascribe+3e45f29c+AUJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
    );
    assert_eq!(
        signer.verifier().public_key_text(),
        "example.com/ascribe+3e45f29c+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS"
    );
    let head = TreeHead {
        origin: "example.com/ascribe".into(),
        size: 2,
        root,
    };
    let note = signer.sign_tree_head(&head).note;
    assert_eq!(
        note,
        "example.com/ascribe\n2\nN/aSGp2gU9gNDw0UMVXmteJwiXBkSCwWAdvb0v1rt1Q=\n\n\u{2014} \
         example.com/ascribe PkXynEQy8mTO61GHWzhdSsL1xXECwyAz2Zr4+Pex0LGrD0A0xBpZHttcwBpouOEW6nCC\
         nHnPyAlAi4y82dZp7pZxYwc=\n"
    );
    assert_eq!(
        signer.verifier().verify_note(&note).expect("verifies"),
        head
    );
}
