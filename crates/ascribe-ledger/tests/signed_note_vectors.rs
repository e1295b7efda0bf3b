//! Compatibility of our signed notes and note keys with notes and keys published elsewhere.
//!
//! Every key, note and signature below is copied verbatim from the file cited above it.
//! Three sets are used:
//!
//! - golang.org/x/mod/sumdb/note's own tests (keys `PeterNeumann` and `EnochRoot`, with one
//!   private key): key texts, key ids, signatures over a note whose text is not a checkpoint,
//!   and the key manglings that must be refused;
//! - a real `sum.golang.org` checkpoint, whose origin is not its key name;
//! - the sixteen signed checkpoints of transparency-dev/trillian-tessera's test log, with the
//!   published private key and the leaves the log was built from: these are full tlog
//!   checkpoints, so `verify_note` must accept them, the roots must be our Merkle roots of
//!   those leaves, and our signer must reproduce each note byte for byte.
//!
//! The example at the top of C2SP's signed-note.md has no published key (checked in the two
//! stored versions of `C2SP/C2SP` signed-note.md), so only its framing is checked.

use ascribe_ledger::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root_of, verify_consistency, verify_inclusion,
    Hash,
};
use ascribe_ledger::note::{key_id, KeyError, NoteError, MAX_SIGNATURES};
use ascribe_ledger::{NoteSigner, NoteVerifier, TreeHead};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

/// The signature lines of a note, after its last blank line: `(key name, decoded bytes)`.
fn signatures(note: &str) -> Vec<(String, Vec<u8>)> {
    let (_, lines) = note.rsplit_once("\n\n").expect("note has a blank line");
    lines
        .lines()
        .map(|line| {
            let rest = line.strip_prefix("\u{2014} ").expect("signature line");
            let (name, encoded) = rest.split_once(' ').expect("name and signature");
            (
                name.to_owned(),
                BASE64.decode(encoded).expect("base64 signature"),
            )
        })
        .collect()
}

/// The text a note's signatures cover: everything before its last blank line, with the
/// newline that ends it.
fn note_text(note: &str) -> &str {
    let split = note.rfind("\n\n").expect("note has a blank line");
    &note[..split + 1]
}

/// A note key id recomputed by hand, independently of `note::key_id`:
/// SHA-256(name || 0x0A || 0x01 || public key)[..4], big-endian.
fn key_id_by_hand(name: &str, public_key: &[u8; 32]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([0x0a, 0x01])
        .chain_update(public_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn verifying_key(verifier: &NoteVerifier) -> VerifyingKey {
    VerifyingKey::from_bytes(&verifier.public_key_bytes()).expect("valid key")
}

// ---------------------------------------------------------------------------------------------
// golang.org/x/mod/sumdb/note.
// ---------------------------------------------------------------------------------------------

// Source: golang/mod, sumdb/note/note_test.go (`TestNewVerifier`, `TestNewSigner`, `TestSign`,
// `TestVerifierList`, `TestOpen`).
const PETER_PUBLIC_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_PRIVATE_KEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_KEY_ID: u32 = 0xc74f20a3;
const ENOCH_PUBLIC_KEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const ENOCH_KEY_ID: u32 = 0xaf0cfe78;
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n";
const PETER_SIGNATURE: &str = "\u{2014} PeterNeumann \
    x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIGNATURE: &str = "\u{2014} EnochRoot \
    rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter_note() -> String {
    format!("{PETER_TEXT}\n{PETER_SIGNATURE}")
}

fn peter() -> NoteVerifier {
    NoteVerifier::from_public_key(PETER_PUBLIC_KEY).expect("published key parses")
}

#[test]
fn peter_public_key_parses_with_the_published_key_id() {
    let verifier = peter();
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.public_key_text(), PETER_PUBLIC_KEY);
    assert_eq!(
        key_id("PeterNeumann", &verifying_key(&verifier)),
        PETER_KEY_ID
    );
    let by_hand = key_id_by_hand("PeterNeumann", &verifier.public_key_bytes());
    assert_eq!(by_hand, PETER_KEY_ID);
}

#[test]
fn enoch_public_key_parses_with_the_published_key_id() {
    let verifier = NoteVerifier::from_public_key(ENOCH_PUBLIC_KEY).expect("parses");
    assert_eq!(verifier.name(), "EnochRoot");
    assert_eq!(verifier.public_key_text(), ENOCH_PUBLIC_KEY);
    assert_eq!(key_id("EnochRoot", &verifying_key(&verifier)), ENOCH_KEY_ID);
}

#[test]
fn peter_private_key_gives_the_published_verifier() {
    let signer = NoteSigner::from_private_key(PETER_PRIVATE_KEY).expect("published key parses");
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.verifier(), peter());
    assert_eq!(signer.private_key_text(), PETER_PRIVATE_KEY);
}

#[test]
fn published_signatures_carry_the_key_ids_and_verify_over_the_text() {
    let note = format!("{PETER_TEXT}\n{PETER_SIGNATURE}{ENOCH_SIGNATURE}");
    assert_eq!(note_text(&note), PETER_TEXT);
    let enoch = NoteVerifier::from_public_key(ENOCH_PUBLIC_KEY).expect("parses");
    let sigs = signatures(&note);
    assert_eq!(sigs.len(), 2);
    for ((name, bytes), (verifier, id)) in sigs
        .iter()
        .zip([(peter(), PETER_KEY_ID), (enoch, ENOCH_KEY_ID)])
    {
        assert_eq!(name, verifier.name());
        assert_eq!(bytes.len(), 4 + 64, "key id and Ed25519 signature");
        assert_eq!(bytes[..4], id.to_be_bytes(), "{name}");
        assert!(
            verifier.verify_bytes(PETER_TEXT.as_bytes(), &bytes[4..]),
            "{name}"
        );
    }
    // Each signature is by its own key only.
    assert!(!peter().verify_bytes(PETER_TEXT.as_bytes(), &sigs[1].1[4..]));
}

/// Ed25519 is deterministic, so our signer must reproduce Go's signature exactly
/// (`TestSign`).
#[test]
fn our_signer_reproduces_the_published_signature() {
    let signer = NoteSigner::from_private_key(PETER_PRIVATE_KEY).expect("parses");
    let published = &signatures(&peter_note())[0].1;
    assert_eq!(
        signer.sign_bytes(PETER_TEXT.as_bytes()).as_slice(),
        &published[4..]
    );
}

#[test]
fn published_signature_fails_on_any_changed_byte() {
    let verifier = peter();
    let signature = signatures(&peter_note())[0].1[4..].to_vec();
    let text = PETER_TEXT.as_bytes();
    for position in 0..signature.len() {
        let mut changed = signature.clone();
        changed[position] ^= 0x01;
        assert!(
            !verifier.verify_bytes(text, &changed),
            "signature byte {position}"
        );
    }
    for position in 0..text.len() {
        let mut changed = text.to_vec();
        changed[position] ^= 0x01;
        assert!(
            !verifier.verify_bytes(&changed, &signature),
            "text byte {position}"
        );
    }
    assert!(
        !verifier.verify_bytes(text, &signature[..63]),
        "short signature"
    );
}

/// `verify_note` checks the signature before it reads the text as a tree head, so the
/// published note gets past the signature and is refused only for not being a checkpoint.
#[test]
fn verify_note_accepts_the_published_signature_but_not_the_text_as_a_tree_head() {
    let error = peter()
        .verify_note(&peter_note())
        .expect_err("not a checkpoint");
    assert!(matches!(error, NoteError::Malformed(_)), "{error:?}");
    // With Enoch's signature after Peter's, Enoch's line is skipped, not refused.
    let both = format!("{PETER_TEXT}\n{PETER_SIGNATURE}{ENOCH_SIGNATURE}");
    let error = peter().verify_note(&both).expect_err("not a checkpoint");
    assert!(matches!(error, NoteError::Malformed(_)), "{error:?}");
    // A changed text is caught by the signature, before the text is read.
    let changed = peter_note().replacen("answer", "Answer", 1);
    let error = peter().verify_note(&changed).expect_err("changed text");
    assert_eq!(error, NoteError::BadSignature("PeterNeumann".into()));
    // A note signed only by another key has no trusted signature.
    let enoch_only = format!("{PETER_TEXT}\n{ENOCH_SIGNATURE}");
    let error = peter()
        .verify_note(&enoch_only)
        .expect_err("not signed by Peter");
    assert_eq!(error, NoteError::NoTrustedSignature("PeterNeumann".into()));
}

// Source: golang/mod, sumdb/note/note_test.go, `TestNewVerifier`: every proper substring
// and every single-byte increment of the key must be refused, as must the two keys below.
#[test]
fn mangled_public_keys_are_refused() {
    for mangled in manglings(PETER_PUBLIC_KEY) {
        let result = NoteVerifier::from_public_key(&mangled);
        assert!(result.is_err(), "accepted `{mangled}`");
    }
    // Wrong length key, with adjusted key hash.
    let long = "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==";
    assert!(matches!(
        NoteVerifier::from_public_key(long),
        Err(KeyError::Malformed(_))
    ));
    // Unknown algorithm, with adjusted key hash.
    let other = "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert!(matches!(
        NoteVerifier::from_public_key(other),
        Err(KeyError::Malformed(_))
    ));
}

// Source: golang/mod, sumdb/note/note_test.go, `TestNewSigner`.
#[test]
fn mangled_private_keys_are_refused() {
    for mangled in manglings(PETER_PRIVATE_KEY) {
        let result = NoteSigner::from_private_key(&mangled);
        assert!(result.is_err(), "accepted `{mangled}`");
    }
}

/// Every proper substring of `key`, then `key` with each byte in turn incremented.
fn manglings(key: &str) -> Vec<String> {
    let bytes = key.as_bytes();
    let mut out = Vec::new();
    for start in 0..=bytes.len() {
        for end in start + 1..=bytes.len() {
            if (start, end) != (0, bytes.len()) {
                out.push(key[start..end].to_owned());
            }
        }
    }
    for position in 0..bytes.len() {
        let mut changed = bytes.to_vec();
        changed[position] += 1;
        out.push(String::from_utf8(changed).expect("ASCII stays ASCII"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A sum.golang.org checkpoint.
// ---------------------------------------------------------------------------------------------

// Source: transparency-dev/formats, log/note_test.go, `TestSumDBNoteParsing`: the Go
// checksum database's key and one of its signed tree heads.
const SUMDB_PUBLIC_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const SUMDB_NOTE: &str = "go.sum database tree\n\
    6476701\n\
    mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\
    \n\
    \u{2014} sum.golang.org \
    Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n";

#[test]
fn sumdb_key_and_signature_verify() {
    let verifier = NoteVerifier::from_public_key(SUMDB_PUBLIC_KEY).expect("published key");
    assert_eq!(verifier.name(), "sum.golang.org");
    assert_eq!(verifier.public_key_text(), SUMDB_PUBLIC_KEY);
    assert_eq!(
        key_id("sum.golang.org", &verifying_key(&verifier)),
        0x033de0ae
    );
    let sigs = signatures(SUMDB_NOTE);
    assert_eq!(sigs.len(), 1);
    let (name, bytes) = &sigs[0];
    assert_eq!(name, "sum.golang.org");
    assert_eq!(bytes[..4], 0x033de0aeu32.to_be_bytes());
    let text = note_text(SUMDB_NOTE);
    assert_eq!(
        text,
        "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    );
    assert!(verifier.verify_bytes(text.as_bytes(), &bytes[4..]));
    assert!(!verifier.verify_bytes(text.replace("6476701", "6476702").as_bytes(), &bytes[4..]));
}

/// Our tree heads require the origin to be the key's name (a key name has no spaces); the
/// sumdb origin `go.sum database tree` is not, so `verify_note` refuses the head, but only
/// after the signature has verified: a changed note is a bad signature instead.
#[test]
fn sumdb_checkpoint_passes_the_signature_then_fails_the_origin_rule() {
    let verifier = NoteVerifier::from_public_key(SUMDB_PUBLIC_KEY).expect("published key");
    let error = verifier
        .verify_note(SUMDB_NOTE)
        .expect_err("origin is not the key name");
    assert!(matches!(error, NoteError::Malformed(_)), "{error:?}");
    let changed = SUMDB_NOTE.replace("\n6476701\n", "\n6476702\n");
    let error = verifier.verify_note(&changed).expect_err("changed size");
    assert_eq!(error, NoteError::BadSignature("sum.golang.org".into()));
}

// ---------------------------------------------------------------------------------------------
// The trillian-tessera test log: full checkpoints.
// ---------------------------------------------------------------------------------------------

// Source: transparency-dev/trillian-tessera, testdata/build_log.sh (commit 1ef94ac2): the
// log's key pair, and its leaves, one per `echo -n "$i"`, in order.
const TESSERA_PRIVATE_KEY: &str =
    "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg";
const TESSERA_PUBLIC_KEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const TESSERA_LEAVES: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

// Source: transparency-dev/trillian-tessera, testdata/log/checkpoint.0 .. checkpoint.15 (the
// versions signed by example.com/log/testdata: commit 842b908e for sizes 0-3, 6, 11, 13, 15;
// commit a508c5b8 for sizes 4, 5, 7-10, 12, 14). Each file is the checkpoint after that many
// leaves: its root hash line and the signature on its signature line.
const TESSERA_ROOTS: [&str; 16] = [
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "0Nc2CrefWKseHj/mStd+LqC8B+NrX0btIiPt2SmN+ek=",
    "T1X2GdkhUjV3iyufF9b0kVsWFxIU0VI4EpNml2Teci4=",
    "Wqx3HImawpLnS/Gv4ubjAvi1WIOy0b8Ze0amvqbavKk=",
    "zY1lN35vrXYAPixXSd59LsU29xUJtuW4o2dNNg5Y2Co=",
    "gy5gl3aksFyiCO95a/1vLXz88A3dRq+0l9Sxte8ZqZQ=",
    "a6sWvsc2eEzmj72vah7mZ5dwFltivehh2b11qwlp5Jg=",
    "IrSXADBqJ7EQoUODSDKROySgNveeL6CFhik2w/+fS7U=",
    "bC+VwvrJbalNVjfkdI8kUgs7mJoXrqiXCE7bgnD28pY=",
    "CvhHViE3S9E3htHLR+25mapWoGCJ3WckMq1UtC3VmEY=",
    "y8/gZsZCtitsMan09tY+k8I7Qpr7Y5fbO2tLi9GQnfU=",
    "Yok1cS5VdokGLBy73BC2I16b3atss6KBN9jnIi6Fz/A=",
    "uZo6M+IhVna+CLgWCrJs0xBPUHbozHkYTQASduHSLME=",
    "av0kLH0VkkVDrTuZzBGIx7d9z5G1l/GlKz/nAV/8woQ=",
    "SvCd38yNade7xEPY1a/aAc1M3A2AHYVF8lIiUnsH1ao=",
    "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=",
];
const TESSERA_SIGNATURES: [&str; 16] = [
    "M9e0lhxJACzE1KoUdqKuPa+9p6R7dSW8BlEvrg/noo8FkGg6PbJoRNOcdjqjOq89wVvTA60eubCc4oufo5BvIVEgtQc=",
    "M9e0lhr9kuLxGdAtaUrhm84TQffVsLdcy808sN0a3WyniNlfcr9+bywoiIke1YYciCNjJGkCgIlQ8b16jhsmg/SChAM=",
    "M9e0llH4NKmlf0u7C8tkJioQOmi7l5ELqljXgKRg6R3G5JJ7vx7emDWo5fpqKuA/Dk/jRrI6il+7QCVirNhyUAWGoAk=",
    "M9e0lvAQRtH832pk2RTbeSeZMkp4FZSdJYFBUjO5SKxuRbywPUF3cx+HUrb50kjd3rUWW/fj53Wj1dwcwh9bGQnqVAg=",
    "M9e0lnFuWt0cp60moO4jAkeXvMNLIIOGn4WdyeHQurBt9mBi0tWdfkldiAt9k0FpwuZymvttsVn9uwyouXU3vPpeNAc=",
    "M9e0lmn5eDHyHP10zJObZdFAX2y1V8fdDKBi4IiHbDYf1TCUBwxZOhqwv2QZCqrdda2zTRTrmnwjwscN5RBTEmZUYAs=",
    "M9e0ln+nHSdGSHEZBcjvqyYDXDbG8WxDwCDjbbGAMv/NTynAtJWhckSXIpuwpN3yJ4PTtzUbD34YGqIZr6RgJRn16gU=",
    "M9e0luA5JhTRUki/BBQD0QNiH6AEJ2pdtsA5CQjqJErViuuKrN6513RCTL2640wXJv0dCed3neRGI6dMzBq9uANf2Qc=",
    "M9e0lq1EK37dHtgv9O3UzPxisw5vwIPcJsX9ab0xt4mvVfbdUR1fbMjN6sBFYpBoBEmD4+cWhj/AVgI5MitCO5+mews=",
    "M9e0ls3mdnWX0qk4P3uGG0eYiFRWSwPR+RdeD1ARmrHPHjXP0x9UJWASPFTOTqJo0mp7Epck2O9RFB0J9IjDdAewagw=",
    "M9e0lrmwaVEOWFZ+HS5ITnRd2YMOSWE5QeoYu+6DHwJLnJ+SVeJ2ZiYeD7lVC5oGJx76gbfLSyCUEq6D8JkarrsuiQQ=",
    "M9e0lqbRtWirJwbUy4w3VrK2RyzfW8P+OIkc8t6b6AVG/tQd1Q2SN+uCLYzNNFnf/PhzeCdURSGQe1MRnohCxPu21wg=",
    "M9e0lrFzoTgi+ovhrqX0DpsEAp3wLu1coMLIkeCwSkGfS4Ox4pLXo2LHudqm4merh0ZkCNzHr8kQwq5gS5mmimIvdA4=",
    "M9e0liO8x8xfEOGmZVYODUjQajkEpjccPQ9EkG3yEEDet4K3BWE/DFRPH6H+b6gFFFaG5KS1bBmYS/xeZJs8lj+z+wM=",
    "M9e0lu8roIpjC+NXEG7JDkajIahoYDYWgxDtxfx/6rzLoztU9t/PvivZ48xt8ygJpjzaboSpkbVv3Jb+D3NdXWQf5wo=",
    "M9e0luh4jTG+UMBqOUo9/q+yAEvx1ilBEniMvjf1zfcBOhg+CKubMt53MvIt/uEWP6zdkdIQzd/fmwlM/dlPWF74ewI=",
];

const TESSERA_ORIGIN: &str = "example.com/log/testdata";

/// The published checkpoint after `size` leaves, as the bytes of the file.
fn tessera_note(size: usize) -> String {
    let (root, signature) = (TESSERA_ROOTS[size], TESSERA_SIGNATURES[size]);
    format!("{TESSERA_ORIGIN}\n{size}\n{root}\n\n\u{2014} {TESSERA_ORIGIN} {signature}\n")
}

fn tessera() -> NoteVerifier {
    NoteVerifier::from_public_key(TESSERA_PUBLIC_KEY).expect("published key parses")
}

fn tessera_leaves() -> Vec<Hash> {
    TESSERA_LEAVES
        .iter()
        .map(|leaf| leaf_hash(leaf.as_bytes()))
        .collect()
}

/// The heads of all published checkpoints, as `verify_note` returns them.
fn tessera_heads() -> Vec<TreeHead> {
    let verifier = tessera();
    (0..TESSERA_ROOTS.len())
        .map(|size| {
            verifier
                .verify_note(&tessera_note(size))
                .expect("published note verifies")
        })
        .collect()
}

#[test]
fn tessera_key_pair_matches_and_has_the_published_key_id() {
    let signer = NoteSigner::from_private_key(TESSERA_PRIVATE_KEY).expect("published key");
    assert_eq!(signer.verifier(), tessera());
    assert_eq!(signer.private_key_text(), TESSERA_PRIVATE_KEY);
    assert_eq!(tessera().public_key_text(), TESSERA_PUBLIC_KEY);
    let public_key = tessera().public_key_bytes();
    assert_eq!(
        key_id(TESSERA_ORIGIN, &verifying_key(&tessera())),
        0x33d7b496
    );
    assert_eq!(key_id_by_hand(TESSERA_ORIGIN, &public_key), 0x33d7b496);
}

#[test]
fn every_published_checkpoint_verifies_and_states_our_root_of_the_published_leaves() {
    let leaves = tessera_leaves();
    for (size, head) in tessera_heads().into_iter().enumerate() {
        assert_eq!(head.origin, TESSERA_ORIGIN);
        assert_eq!(head.size, size as u64);
        assert_eq!(head.root, root_of(&leaves[..size]), "size {size}");
    }
}

/// Ed25519 is deterministic, so signing the same head with the published private key must
/// give the published file exactly: same body, same blank line, same signature line.
#[test]
fn our_signer_reproduces_every_published_checkpoint_byte_for_byte() {
    let signer = NoteSigner::from_private_key(TESSERA_PRIVATE_KEY).expect("published key");
    for (size, head) in tessera_heads().into_iter().enumerate() {
        let signed = signer.sign_tree_head(&head);
        assert_eq!(signed.note, tessera_note(size), "size {size}");
        assert_eq!(signed.head, head);
    }
}

/// The published heads are mutually consistent, and every leaf is provably in every head
/// that covers it, with proofs made by us over the published leaves.
#[test]
fn published_checkpoints_are_consistent_and_include_their_leaves() {
    let leaves = tessera_leaves();
    let heads = tessera_heads();
    for new in &heads {
        for old in &heads[..=new.size as usize] {
            let mut source: &[Hash] = &leaves[..new.size as usize];
            let proof = consistency_proof(old.size, new.size, &mut source).expect("in order");
            let result = verify_consistency(old.size, new.size, &old.root, &new.root, &proof);
            assert_eq!(result, Ok(()), "{} to {}", old.size, new.size);
        }
        for index in 0..new.size {
            let mut source: &[Hash] = &leaves[..new.size as usize];
            let proof = inclusion_proof(index, new.size, &mut source).expect("in range");
            let leaf = &leaves[index as usize];
            let result = verify_inclusion(index, new.size, leaf, &proof, &new.root);
            assert_eq!(result, Ok(()), "leaf {index} in {}", new.size);
        }
    }
}

/// Changed notes, after the malformed messages of `TestOpen` in golang/mod,
/// sumdb/note/note_test.go, applied to a published checkpoint.
#[test]
fn changed_checkpoints_are_refused() {
    let verifier = tessera();
    let note = tessera_note(15);
    let text = note_text(&note);
    let signature_line = &note[text.len() + 1..];
    let malformed =
        |changed: &str| matches!(verifier.verify_note(changed), Err(NoteError::Malformed(_)));
    // No signature block at all, an empty one, and one without its final newline.
    assert!(malformed(text));
    assert!(malformed(&format!("{text}\n")));
    assert!(malformed(&note[..note.len() - 1]));
    // A control character.
    assert!(malformed(&format!("\u{1}{note}")));
    // A key name with a space, and a line that is not a signature.
    let bad_name = signature_line.replacen(TESSERA_ORIGIN, "Bad Name", 1);
    assert!(malformed(&format!("{text}\n{bad_name}")));
    assert!(malformed(&format!("{note}Unexpected line.\n")));
    // Bytes inserted into the signature (after its key id) make it a bad signature.
    let (head, encoded) = signature_line.rsplit_once(' ').expect("signature line");
    let garbled = format!("{text}\n{head} {}ABCD{}", &encoded[..8], &encoded[8..]);
    let error = verifier
        .verify_note(&garbled)
        .expect_err("garbled signature");
    assert_eq!(error, NoteError::BadSignature(TESSERA_ORIGIN.into()));
    // The signed body of another size under this signature.
    let moved = note.replacen("\n15\n", "\n14\n", 1);
    let error = verifier.verify_note(&moved).expect_err("changed size");
    assert_eq!(error, NoteError::BadSignature(TESSERA_ORIGIN.into()));
    // Another checkpoint's valid signature under this body.
    let swapped = format!(
        "{text}\n{}",
        &tessera_note(14)[note_text(&tessera_note(14)).len() + 1..]
    );
    let error = verifier
        .verify_note(&swapped)
        .expect_err("signature of another head");
    assert_eq!(error, NoteError::BadSignature(TESSERA_ORIGIN.into()));
}

/// C2SP signed-note: "Verifiers MUST ignore signatures from unknown keys, even if they share
/// a name or ID (but not both) with a known key."
#[test]
fn signatures_sharing_only_the_name_or_only_the_key_id_are_ignored() {
    let verifier = tessera();
    let note = tessera_note(3);
    let text = note_text(&note);
    let signature_line = &note[text.len() + 1..];
    // Same key id, other name (`misnamedSig` of `TestOpen`).
    let misnamed = signature_line.replacen(TESSERA_ORIGIN, "CarmenSandiego", 1);
    let error = verifier
        .verify_note(&format!("{text}\n{misnamed}"))
        .expect_err("misnamed");
    assert_eq!(error, NoteError::NoTrustedSignature(TESSERA_ORIGIN.into()));
    // Same name, another key (so another key id).
    let other = NoteSigner::from_seed(TESSERA_ORIGIN, [7u8; 32]);
    let forged = other.sign_tree_head(&tessera_heads()[3]).note;
    let error = verifier.verify_note(&forged).expect_err("other key");
    assert_eq!(error, NoteError::NoTrustedSignature(TESSERA_ORIGIN.into()));
    // Both ignored lines before the genuine one do not stop it from verifying.
    let forged_line = &forged[note_text(&forged).len() + 1..];
    let all = format!("{text}\n{misnamed}{forged_line}{signature_line}");
    assert_eq!(verifier.verify_note(&all), Ok(tessera_heads()[3].clone()));
}

/// Our own rule on top of C2SP tlog-checkpoint (which only says the key name SHOULD match
/// the origin): a head is accepted only from the key named like its origin, so a log key
/// cannot vouch for another log's tree, even with a valid signature.
#[test]
fn a_validly_signed_head_of_another_origin_is_refused() {
    let signer = NoteSigner::from_private_key(TESSERA_PRIVATE_KEY).expect("published key");
    let mut head = tessera_heads()[4].clone();
    head.origin = "example.com/log/other".into();
    let note = signer.sign_tree_head(&head).note;
    assert!(note.starts_with("example.com/log/other\n4\n"));
    let error = tessera()
        .verify_note(&note)
        .expect_err("origin is not the key name");
    assert!(matches!(error, NoteError::Malformed(_)), "{error:?}");
}

/// C2SP signed-note: verifiers "MUST accept at least up to 16 signatures".
#[test]
fn sixteen_signatures_are_accepted_and_more_are_refused() {
    let verifier = tessera();
    let note = tessera_note(5);
    let text = note_text(&note);
    let signature_line = &note[text.len() + 1..];
    assert_eq!(MAX_SIGNATURES, 16);
    let sixteen = format!("{text}\n{}", signature_line.repeat(16));
    assert_eq!(
        verifier.verify_note(&sixteen),
        Ok(tessera_heads()[5].clone())
    );
    let seventeen = format!("{text}\n{}", signature_line.repeat(17));
    assert!(matches!(
        verifier.verify_note(&seventeen),
        Err(NoteError::Malformed(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// The C2SP signed-note example.
// ---------------------------------------------------------------------------------------------

// Source: C2SP/C2SP, signed-note.md, the example at the top. Its text contains a blank
// line; the signatures start after the *last* blank line. No key for it is published, so
// this checks the framing: the signature line is found and read as a 4-byte key id and a
// 64-byte Ed25519 signature, and a verifier with the same name but another key skips it.
const C2SP_EXAMPLE: &str = "Ognuno sta solo sul cuor della terra\n\
    trafitto da un raggio di sole:\n\
    \n\
    ed \u{e8} subito sera.\n\
    \n\
    \u{2014} quasimodo.example/salvatore \
    NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

#[test]
fn c2sp_example_is_framed_at_the_last_blank_line() {
    assert!(note_text(C2SP_EXAMPLE).ends_with("\n\ned \u{e8} subito sera.\n"));
    let sigs = signatures(C2SP_EXAMPLE);
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].0, "quasimodo.example/salvatore");
    assert_eq!(sigs[0].1.len(), 4 + 64);
    let verifier = NoteSigner::from_seed("quasimodo.example/salvatore", [1u8; 32]).verifier();
    let error = verifier.verify_note(C2SP_EXAMPLE).expect_err("unknown key");
    assert_eq!(
        error,
        NoteError::NoTrustedSignature("quasimodo.example/salvatore".into())
    );
}
