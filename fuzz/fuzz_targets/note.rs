//! Signed tree heads: the C2SP signed-note reader (`NoteVerifier::verify_note`), the note
//! body reader (`TreeHead::parse_body`) and the key text readers.
//!
//! Input: one byte choosing the mode, then text.
//!
//! - Raw mode: the text as a note, a note body, a public key and a private key; never
//!   panics, and a note that verifies states a head whose body prints back as signed.
//! - Forgery mode: a real note signed by the test key, then the input's bytes written over
//!   it at a position the input picks. A changed note may verify only if it states the very
//!   same head (its signed body is unchanged); otherwise it must be refused.
#![no_main]

use std::sync::OnceLock;

use ascribe_ledger::merkle::Hash;
use ascribe_ledger::{NoteSigner, NoteVerifier, TreeHead};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "ascribe.fuzz/ledger";

fn signer() -> &'static NoteSigner {
    static SIGNER: OnceLock<NoteSigner> = OnceLock::new();
    SIGNER.get_or_init(|| NoteSigner::from_seed(ORIGIN, [9; 32]))
}

fn raw(text: &str) {
    let verifier = signer().verifier();
    if let Ok(head) = verifier.verify_note(text) {
        assert!(
            text.starts_with(&head.body_text()),
            "the head is not the signed body"
        );
        assert_eq!(head.origin, ORIGIN);
    }
    if let Ok(head) = TreeHead::parse_body(text) {
        assert_eq!(
            head.body_text(),
            text,
            "a body reads back only in canonical form"
        );
    }
    if let Ok(key) = NoteVerifier::from_public_key(text) {
        assert_eq!(
            NoteVerifier::from_public_key(&key.public_key_text()).ok(),
            Some(key)
        );
    }
    if let Ok(key) = NoteSigner::from_private_key(text) {
        let again = NoteSigner::from_private_key(&key.private_key_text()).expect("reads back");
        assert_eq!(again.verifier(), key.verifier());
    }
}

fn forgery(data: &[u8]) {
    let [size_low, size_high, root_byte, at_low, at_high, patch @ ..] = data else {
        return;
    };
    let head = TreeHead {
        origin: ORIGIN.to_owned(),
        size: u64::from(u16::from_le_bytes([*size_low, *size_high])),
        root: [*root_byte; 32] as Hash,
    };
    let note = signer().sign_tree_head(&head).note;
    let verifier = signer().verifier();
    assert_eq!(verifier.verify_note(&note).as_ref(), Ok(&head));

    let mut bytes = note.clone().into_bytes();
    let at = usize::from(u16::from_le_bytes([*at_low, *at_high])) % (bytes.len() + 1);
    let end = (at + patch.len()).min(bytes.len());
    bytes.splice(at..end, patch.iter().copied());
    let Ok(changed) = String::from_utf8(bytes) else {
        return;
    };
    if changed == note {
        return;
    }
    if let Ok(stated) = verifier.verify_note(&changed) {
        assert_eq!(stated, head, "a changed note verified with another head");
        assert!(
            changed.starts_with(&head.body_text()),
            "a changed body verified"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        raw(&String::from_utf8_lossy(rest));
    } else {
        forgery(rest);
    }
});
