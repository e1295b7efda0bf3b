//! `ascribe receipt verify`: check a receipt offline with the ledger's public key, and with
//! `--against-ledger`, that the ledger still holds the entry the receipt covers.

use ascribe_inference::Receipt;
use ascribe_ledger::merkle::{leaf_hash, verify_inclusion};
use ascribe_ledger::{Hash, NoteVerifier};
use ascribe_store::query;
use serde_json::json;

use crate::cli::ReceiptCommand;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Runs one `receipt` subcommand; a receipt that does not verify is exit code 1.
pub fn run(context: &Context, command: ReceiptCommand) -> anyhow::Result<Outcome> {
    let ReceiptCommand::Verify {
        token,
        public_key,
        against_ledger,
        output,
    } = command;
    let verifier = context.trusted_key(public_key.as_deref())?;
    let receipt = match Receipt::verify(&token, &verifier) {
        Ok(receipt) => receipt,
        Err(error) => {
            if output.json {
                print_json(&json!({"ok": false, "error": error.to_string()}))?;
            } else {
                println!("FAILED: {error}");
            }
            return Ok(Outcome::ProblemFound);
        }
    };
    let in_ledger = if against_ledger {
        Some(check_in_ledger(context, &receipt, &verifier)?)
    } else {
        None
    };
    let ok = in_ledger.as_ref().is_none_or(Result::is_ok);
    if output.json {
        let mut document = json!({"ok": ok, "signature_valid": true, "receipt": receipt});
        if let Some(found) = &in_ledger {
            document["ledger"] = match found {
                Ok(tree_size) => json!({"included": true, "tree_size": tree_size, "error": null}),
                Err(error) => json!({"included": false, "error": error}),
            };
        }
        print_json(&document)?;
    } else {
        let statement = format!(
            "inference {} is entry seq {} (leaf {}) of ledger {}, served by {}",
            receipt.inference_id,
            receipt.seq,
            receipt.leaf_hash,
            receipt.origin,
            receipt.checkpoint
        );
        match &in_ledger {
            None => println!("ok: {statement}"),
            Some(Ok(tree_size)) => {
                println!("ok: {statement}; included in the signed tree head of size {tree_size}")
            }
            Some(Err(error)) => {
                println!("FAILED: the receipt's signature is valid ({statement}), but {error}")
            }
        }
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::ProblemFound
    })
}

/// Proves the receipt's entry against the latest signed tree head of the ledger: `Ok` with
/// that head's size, or `Err` saying why the ledger does not hold the entry the receipt names.
/// Only an unreadable database is an error of the command.
fn check_in_ledger(
    context: &Context,
    receipt: &Receipt,
    verifier: &NoteVerifier,
) -> anyhow::Result<Result<u64, String>> {
    let seq = receipt.seq;
    let mut leaf: Hash = [0; 32];
    if hex::decode_to_slice(&receipt.leaf_hash, &mut leaf).is_err() {
        return Ok(Err(format!(
            "the receipt's leaf hash `{}` is not 32 bytes of hex",
            receipt.leaf_hash
        )));
    }
    let mut backend = context.backend()?;
    let backend = backend.as_mut();
    let entries = query::entry_count(backend)?;
    let Some(record) = query::latest_tree_head(backend)? else {
        return Ok(Err("the ledger has no signed tree head".to_owned()));
    };
    let head = match verifier.verify_note(&record.head.note) {
        Ok(head) if head.size == record.head.size => head,
        Ok(head) => {
            return Ok(Err(format!(
                "the latest signed tree head is filed at size {} but states size {}",
                record.head.size, head.size
            )))
        }
        Err(error) => {
            return Ok(Err(format!(
                "the latest signed tree head (size {}) does not verify: {error}",
                record.head.size
            )))
        }
    };
    if seq >= head.size {
        return Ok(Err(if seq >= entries {
            format!(
                "the ledger has no entry seq {seq} (it holds {entries} entries, its latest signed \
                 tree head covers {}): the entry was removed, since a receipt is handed out only \
                 once its entry is durable",
                head.size
            )
        } else {
            format!(
                "no signed tree head covers entry seq {seq} yet (the latest covers {}); ask again \
                 in a second",
                head.size
            )
        }));
    }
    let proof = match query::inclusion_proof(backend, seq, head.size) {
        Ok(proof) => proof,
        Err(error) => {
            return Ok(Err(format!(
                "there is no inclusion proof of entry seq {seq} in the signed tree head of size \
                 {}: {error}",
                head.size
            )))
        }
    };
    if let Err(error) = verify_inclusion(seq, head.size, &leaf, &proof.proof, &head.root) {
        return Ok(Err(format!(
            "the receipt's leaf {} is not entry seq {seq} of the signed tree head of size {} \
             (the ledger's leaf there is {}): {error}",
            receipt.leaf_hash,
            head.size,
            hex::encode(proof.leaf_hash)
        )));
    }
    let stored = query::entries(backend, seq, 1)?;
    match stored.first() {
        Some(row) if row.seq == seq && leaf_hash(row.entry.as_bytes()) == leaf => Ok(Ok(head.size)),
        _ => Ok(Err(format!(
            "the entry stored at seq {seq} no longer hashes to the receipt's leaf {}: it was \
             changed after it was signed",
            receipt.leaf_hash
        ))),
    }
}
