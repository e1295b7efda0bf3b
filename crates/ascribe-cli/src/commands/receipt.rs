//! `ascribe receipt verify`: check a receipt offline with the ledger's public key.

use ascribe_inference::Receipt;

use crate::cli::ReceiptCommand;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Runs one `receipt` subcommand; a receipt that does not verify is exit code 1.
pub fn run(context: &Context, command: ReceiptCommand) -> anyhow::Result<Outcome> {
    let ReceiptCommand::Verify {
        token,
        public_key,
        output,
    } = command;
    let verifier = context.trusted_key(public_key.as_deref())?;
    match Receipt::verify(&token, &verifier) {
        Ok(receipt) => {
            if output.json {
                print_json(&serde_json::json!({"ok": true, "receipt": receipt}))?;
            } else {
                println!(
                    "ok: inference {} is entry seq {} (leaf {}) of ledger {}, served by {}",
                    receipt.inference_id,
                    receipt.seq,
                    receipt.leaf_hash,
                    receipt.origin,
                    receipt.checkpoint
                );
            }
            Ok(Outcome::Success)
        }
        Err(error) => {
            if output.json {
                print_json(&serde_json::json!({"ok": false, "error": error.to_string()}))?;
            } else {
                println!("FAILED: {error}");
            }
            Ok(Outcome::ProblemFound)
        }
    }
}
