//! Receipts: a compact signed statement handed to the caller with each answer.
//!
//! ```text
//! payload = RFC 8785 JSON {"checkpoint","inference_id","leaf_hash","origin","seq","v":1}
//! signed  = Ed25519(ledger key, "ascribe-receipt/v1" || 0x0A || payload)
//! token   = base64url(payload) || "." || base64url(signature)      (no padding)
//! ```
//!
//! The receipt binds the inference id to its ledger position (`seq`) and leaf hash, so with
//! an inclusion proof against a later signed tree head anyone can show the record is still in
//! the ledger, or that it was removed.

use ascribe_ledger::{Hash, NoteSigner, NoteVerifier};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64_URL;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Domain separation: what a receipt signature is over, before the payload.
const CONTEXT: &[u8] = b"ascribe-receipt/v1\n";

/// What a receipt states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The ledger's origin (its key name).
    pub origin: String,
    /// The inference.
    pub inference_id: String,
    /// The `seq` of the entry the receipt covers.
    pub seq: u64,
    /// That entry's leaf hash, lowercase hex.
    pub leaf_hash: String,
    /// The checkpoint recorded as having served.
    pub checkpoint: String,
    /// The receipt format version, 1.
    pub v: u32,
}

/// Why a receipt token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The token is not `<payload>.<signature>` in base64url.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The signature does not verify with the given public key.
    #[error("receipt signature does not verify with key `{0}`")]
    BadSignature(String),
}

impl Receipt {
    /// A receipt for the entry at `seq` with `leaf_hash`.
    pub fn new(
        origin: &str,
        inference_id: &str,
        seq: u64,
        leaf_hash: &Hash,
        checkpoint: &str,
    ) -> Receipt {
        Receipt {
            origin: origin.to_owned(),
            inference_id: inference_id.to_owned(),
            seq,
            leaf_hash: hex::encode(leaf_hash),
            checkpoint: checkpoint.to_owned(),
            v: 1,
        }
    }

    /// Signs the receipt into its token.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, ReceiptError> {
        let payload =
            serde_jcs::to_vec(self).map_err(|error| ReceiptError::Malformed(error.to_string()))?;
        let signature = signer.sign_bytes(&signed_message(&payload));
        Ok(format!(
            "{}.{}",
            BASE64_URL.encode(&payload),
            BASE64_URL.encode(signature)
        ))
    }

    /// Checks a token with the ledger's public key and returns what it states.
    pub fn verify(token: &str, verifier: &NoteVerifier) -> Result<Receipt, ReceiptError> {
        let malformed = |what: &str| ReceiptError::Malformed(what.to_owned());
        let (payload, signature) = token
            .trim()
            .split_once('.')
            .ok_or_else(|| malformed("no `.`"))?;
        let payload = BASE64_URL
            .decode(payload)
            .map_err(|_| malformed("payload is not base64url"))?;
        let signature = BASE64_URL
            .decode(signature)
            .map_err(|_| malformed("signature is not base64url"))?;
        if !verifier.verify_bytes(&signed_message(&payload), &signature) {
            return Err(ReceiptError::BadSignature(verifier.name().to_owned()));
        }
        let receipt: Receipt = serde_json::from_slice(&payload)
            .map_err(|error| ReceiptError::Malformed(format!("payload: {error}")))?;
        if receipt.origin != verifier.name() || receipt.v != 1 {
            return Err(malformed("receipt is for another ledger or version"));
        }
        Ok(receipt)
    }
}

fn signed_message(payload: &[u8]) -> Vec<u8> {
    [CONTEXT, payload].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("ascribe.test/receipts", [8; 32])
    }

    #[test]
    fn receipts_round_trip_and_refuse_changes() {
        let receipt = Receipt::new(
            "ascribe.test/receipts",
            "inf_1",
            41,
            &[7; 32],
            "openai:gpt-4o-2024-08-06",
        );
        let token = receipt.sign(&signer()).expect("signs");
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(
            Receipt::verify(&token, &signer().verifier()),
            Ok(receipt.clone())
        );

        let (payload, signature) = token.split_once('.').expect("two parts");
        let mut changed = receipt;
        changed.seq = 42;
        let forged_payload = BASE64_URL.encode(serde_jcs::to_vec(&changed).expect("json"));
        let forged = format!("{forged_payload}.{signature}");
        assert!(matches!(
            Receipt::verify(&forged, &signer().verifier()),
            Err(ReceiptError::BadSignature(_))
        ));

        let other = NoteSigner::from_seed("ascribe.test/receipts", [9; 32]);
        assert!(Receipt::verify(&token, &other.verifier()).is_err());
        assert!(Receipt::verify(payload, &signer().verifier()).is_err());
    }
}
