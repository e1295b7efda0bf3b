//! Signed tree heads in the C2SP signed-note checkpoint form, and their Ed25519 keys.
//!
//! A tree head's note text is three lines, the C2SP `tlog-checkpoint` body:
//!
//! ```text
//! <origin>
//! <tree size in decimal>
//! <root hash in standard base64>
//! ```
//!
//! followed by a blank line and one signature line per signer:
//!
//! ```text
//! — <key name> <base64(key id || Ed25519 signature over the body)>
//! ```
//!
//! Keys use the `note` text forms: the public key is `<name>+<key id hex>+<base64(0x01 ||
//! public key)>` and the private key is the same prefixed `PRIVATE+KEY+` with the 32-byte seed
//! in place of the public key. The key id is the first four bytes of
//! `SHA-256(<name> || 0x0A || 0x01 || public key)`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Algorithm byte of Ed25519 keys in the note key formats.
pub const ALGORITHM_ED25519: u8 = 0x01;

/// The prefix of every signature line: U+2014 EM DASH and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Most signature lines a verifier reads before giving up on a note.
pub const MAX_SIGNATURES: usize = 16;

/// What a tree head states: which log, how many entries, and the root over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// The log's name, the first line of the note; also the signing key's name.
    pub origin: String,
    /// Number of entries the root covers.
    pub size: u64,
    /// RFC 9162 root hash of the first `size` entries.
    pub root: Hash,
}

impl TreeHead {
    /// The note body: the exact bytes that are signed.
    pub fn body_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses a note body, refusing anything that would not print back identically.
    pub fn parse_body(body: &str) -> Result<TreeHead, NoteError> {
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .unwrap_or(body)
            .split('\n')
            .collect();
        let [origin, size, root, ..] = lines.as_slice() else {
            return Err(NoteError::Malformed(
                "a tree head has at least three lines".into(),
            ));
        };
        validate_key_name(origin).map_err(|_| NoteError::Malformed("bad origin line".into()))?;
        let size: u64 = size
            .parse()
            .map_err(|_| NoteError::Malformed(format!("bad tree size `{size}`")))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| NoteError::Malformed(format!("bad root hash `{root}`")))?;
        let head = TreeHead {
            origin: (*origin).to_owned(),
            size,
            root,
        };
        if lines.len() != 3 || head.body_text() != body {
            return Err(NoteError::Malformed(
                "tree head body is not in canonical form".into(),
            ));
        }
        Ok(head)
    }
}

/// A tree head together with its signed note text, as stored and published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The head the note states.
    pub head: TreeHead,
    /// The whole note: body, blank line, signature lines.
    pub note: String,
}

/// Why a note or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The text is not a signed note of the expected shape.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// No signature line is from the trusted key.
    #[error("note has no signature from key `{0}`; check that the right public key is used")]
    NoTrustedSignature(String),
    /// A signature line names the trusted key but its signature does not verify.
    #[error("signature by key `{0}` does not verify: the note was changed or forged")]
    BadSignature(String),
}

/// Why a key text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not in the expected key format.
    #[error("malformed key: {0}")]
    Malformed(String),
    /// The key id in the text does not match the key.
    #[error("key id in the key text does not match the key itself")]
    IdMismatch,
}

/// Holds the ledger's private key and signs tree heads and receipts with it.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    signing_key: SigningKey,
}

impl NoteSigner {
    /// Makes a new key pair named `name` from 32 bytes of operating-system randomness.
    pub fn generate(name: &str) -> Result<NoteSigner, KeyError> {
        validate_key_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|error| KeyError::Malformed(format!("no randomness available: {error}")))?;
        Ok(NoteSigner::from_seed(name, seed))
    }

    /// Builds a signer from a known seed (for tests and test vectors).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> NoteSigner {
        let signing_key = SigningKey::from_bytes(&seed);
        let key_id = key_id(name, &signing_key.verifying_key());
        NoteSigner {
            name: name.to_owned(),
            key_id,
            signing_key,
        }
    }

    /// Parses a `PRIVATE+KEY+<name>+<id>+<base64>` text.
    pub fn from_private_key(text: &str) -> Result<NoteSigner, KeyError> {
        let rest = text
            .trim_end()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| {
                KeyError::Malformed("private key must start with PRIVATE+KEY+".into())
            })?;
        let (name, claimed_id, seed) = split_key_text(rest)?;
        let signer = NoteSigner::from_seed(name, seed);
        if signer.key_id != claimed_id {
            return Err(KeyError::IdMismatch);
        }
        Ok(signer)
    }

    /// The private key text; store it in a file only its owner can read.
    pub fn private_key_text(&self) -> String {
        let mut key = vec![ALGORITHM_ED25519];
        key.extend_from_slice(&self.signing_key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(key)
        )
    }

    /// The matching verifier, whose text form is safe to publish.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            verifying_key: self.signing_key.verifying_key(),
        }
    }

    /// The key's name, which is also the origin line of the heads it signs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs a tree head, producing its note text.
    pub fn sign_tree_head(&self, head: &TreeHead) -> SignedTreeHead {
        let body = head.body_text();
        let signature = self.signing_key.sign(body.as_bytes());
        let mut signed = self.key_id.to_be_bytes().to_vec();
        signed.extend_from_slice(&signature.to_bytes());
        let note = format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(signed)
        );
        SignedTreeHead {
            head: head.clone(),
            note,
        }
    }

    /// Signs arbitrary bytes with the ledger key (receipts use this).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.signing_key.sign(message).to_bytes()
    }
}

/// Holds a published public key and checks notes and signatures against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    verifying_key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a `<name>+<id>+<base64>` public key text.
    pub fn from_public_key(text: &str) -> Result<NoteVerifier, KeyError> {
        let (name, claimed_id, key_bytes) = split_key_text(text.trim())?;
        let verifying_key = VerifyingKey::from_bytes(&key_bytes)
            .map_err(|_| KeyError::Malformed("not a valid Ed25519 public key".into()))?;
        if key_id(name, &verifying_key) != claimed_id {
            return Err(KeyError::IdMismatch);
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: claimed_id,
            verifying_key,
        })
    }

    /// The public key text, as printed by `ascribe init`.
    pub fn public_key_text(&self) -> String {
        let mut key = vec![ALGORITHM_ED25519];
        key.extend_from_slice(self.verifying_key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(key))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.verifying_key.to_bytes()
    }

    /// Checks a signed tree head note and returns the head it states.
    ///
    /// Signature lines from other keys are ignored; one valid signature from this key is
    /// required, and the origin must be this key's name.
    pub fn verify_note(&self, note: &str) -> Result<TreeHead, NoteError> {
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before signatures".into()))?;
        let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
        if !signatures.ends_with('\n') || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed(
                "note must be text lines ending in newline".into(),
            ));
        }
        let mut trusted = false;
        for (number, line) in signatures.lines().enumerate() {
            if number >= MAX_SIGNATURES {
                return Err(NoteError::Malformed(format!(
                    "more than {MAX_SIGNATURES} signatures"
                )));
            }
            trusted |= self.check_signature_line(body, line)?;
        }
        if !trusted {
            return Err(NoteError::NoTrustedSignature(self.name.clone()));
        }
        let head = TreeHead::parse_body(body)?;
        if head.origin != self.name {
            return Err(NoteError::Malformed(format!(
                "origin `{}` is not the key name `{}`",
                head.origin, self.name
            )));
        }
        Ok(head)
    }

    /// Returns whether `line` is a valid signature by this key; other keys' lines are skipped.
    fn check_signature_line(&self, body: &str, line: &str) -> Result<bool, NoteError> {
        let malformed = || NoteError::Malformed(format!("bad signature line `{line}`"));
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(malformed)?;
        let (name, encoded) = rest.split_once(' ').ok_or_else(malformed)?;
        let bytes = BASE64.decode(encoded).map_err(|_| malformed())?;
        if bytes.len() < 4 {
            return Err(malformed());
        }
        let line_key_id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if name != self.name || line_key_id != self.key_id {
            return Ok(false);
        }
        if self.verify_bytes(body.as_bytes(), &bytes[4..]) {
            Ok(true)
        } else {
            Err(NoteError::BadSignature(self.name.clone()))
        }
    }

    /// Checks an Ed25519 signature over arbitrary bytes (receipts use this).
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.verifying_key.verify(message, &signature).is_ok()
    }
}

/// The note key id: the first four bytes of SHA-256(name || 0x0A || 0x01 || public key).
pub fn key_id(name: &str, verifying_key: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ALGORITHM_ED25519]);
    hasher.update(verifying_key.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Key names are non-empty, printable, and free of spaces and `+`.
pub fn validate_key_name(name: &str) -> Result<(), KeyError> {
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '+';
    if name.is_empty() || name.chars().any(bad_char) {
        return Err(KeyError::Malformed(format!(
            "key name `{name}` must be non-empty with no spaces or `+`"
        )));
    }
    Ok(())
}

/// Splits `<name>+<id hex>+<base64(0x01 || 32 bytes)>` into its parts.
fn split_key_text(text: &str) -> Result<(&str, u32, [u8; 32]), KeyError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Malformed("expected <name>+<key id>+<key>".into()));
    };
    validate_key_name(name)?;
    let id = u32::from_str_radix(id, 16)
        .ok()
        .filter(|_| id.len() == 8)
        .ok_or_else(|| KeyError::Malformed(format!("key id `{id}` is not 8 hex digits")))?;
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| KeyError::Malformed("key material is not base64".into()))?;
    match bytes.split_first() {
        Some((&ALGORITHM_ED25519, key)) if key.len() == 32 => {
            let mut material = [0u8; 32];
            material.copy_from_slice(key);
            Ok((name, id, material))
        }
        _ => Err(KeyError::Malformed(
            "key material is not an Ed25519 key".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("ascribe.test/ledger", [7u8; 32])
    }

    fn head() -> TreeHead {
        TreeHead {
            origin: "ascribe.test/ledger".into(),
            size: 8,
            root: [0x5d; 32],
        }
    }

    #[test]
    fn signed_note_round_trips_and_verifies() {
        let signed = signer().sign_tree_head(&head());
        assert!(signed
            .note
            .starts_with("ascribe.test/ledger\n8\nXV1dXV1dXV1dXV1dXV1dXV1d"));
        assert!(signed.note.contains("\n\n\u{2014} ascribe.test/ledger "));
        let verified = signer()
            .verifier()
            .verify_note(&signed.note)
            .expect("verifies");
        assert_eq!(verified, head());
    }

    #[test]
    fn key_texts_round_trip() {
        let signer = signer();
        let again = NoteSigner::from_private_key(&signer.private_key_text()).expect("parses");
        assert_eq!(again.verifier(), signer.verifier());
        let verifier =
            NoteVerifier::from_public_key(&signer.verifier().public_key_text()).expect("parses");
        assert_eq!(verifier, signer.verifier());
    }

    #[test]
    fn changed_body_fails_with_bad_signature() {
        let signed = signer().sign_tree_head(&head());
        let forged = signed.note.replacen("\n8\n", "\n9\n", 1);
        let error = signer()
            .verifier()
            .verify_note(&forged)
            .expect_err("changed size");
        assert_eq!(error, NoteError::BadSignature("ascribe.test/ledger".into()));
    }

    #[test]
    fn other_key_is_not_trusted() {
        let forger = NoteSigner::from_seed("ascribe.test/ledger", [9u8; 32]);
        let forged = forger.sign_tree_head(&head());
        let error = signer()
            .verifier()
            .verify_note(&forged.note)
            .expect_err("other key");
        assert_eq!(
            error,
            NoteError::NoTrustedSignature("ascribe.test/ledger".into())
        );
    }

    #[test]
    fn tampered_key_id_is_refused() {
        let text = signer().verifier().public_key_text();
        let (name, rest) = text.split_once('+').expect("has +");
        let tampered = format!("{name}+00000000+{}", &rest[9..]);
        assert_eq!(
            NoteVerifier::from_public_key(&tampered),
            Err(KeyError::IdMismatch)
        );
    }
}
