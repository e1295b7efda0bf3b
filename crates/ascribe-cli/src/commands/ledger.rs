//! `ascribe ledger head|proof|public-key`: what a third party needs to check the ledger.

use anyhow::Context as _;
use ascribe_ledger::Hash;
use ascribe_store::query;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::json;

use crate::cli::{LedgerCommand, ProofArgs};
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Runs one `ledger` subcommand.
pub fn run(context: &Context, command: LedgerCommand) -> anyhow::Result<Outcome> {
    match command {
        LedgerCommand::Head { json } => head(context, json),
        LedgerCommand::Proof(args) => proof(context, args),
        LedgerCommand::PublicKey => {
            println!("{}", context.keys.load_verifier()?.public_key_text());
            Ok(Outcome::Success)
        }
    }
}

fn head(context: &Context, json: bool) -> anyhow::Result<Outcome> {
    let mut backend = context.backend()?;
    let record = query::latest_tree_head(backend.as_mut())?
        .context("the ledger has no signed tree head yet")?;
    if json {
        print_json(&json!({
            "tree_size": record.head.size,
            "signed_at": record.signed_at,
            "note": record.head.note,
        }))?;
    } else {
        print!("{}", record.head.note);
    }
    Ok(Outcome::Success)
}

fn proof(context: &Context, args: ProofArgs) -> anyhow::Result<Outcome> {
    let mut backend = context.backend()?;
    match (args.index, args.size, args.from, args.to) {
        (Some(index), Some(size), _, _) => {
            let proof = query::inclusion_proof(backend.as_mut(), index, size)?;
            let root = query::root_at(backend.as_mut(), size)?;
            print_json(&json!({
                "type": "inclusion",
                "index": proof.index,
                "tree_size": proof.tree_size,
                "leaf_hash": BASE64.encode(proof.leaf_hash),
                "root": BASE64.encode(root),
                "proof": encode_all(&proof.proof),
            }))?;
        }
        (_, _, Some(from), Some(to)) => {
            let proof = query::consistency_proof(backend.as_mut(), from, to)?;
            print_json(&json!({
                "type": "consistency",
                "from": from,
                "to": to,
                "from_root": BASE64.encode(query::root_at(backend.as_mut(), from)?),
                "to_root": BASE64.encode(query::root_at(backend.as_mut(), to)?),
                "proof": encode_all(&proof),
            }))?;
        }
        _ => anyhow::bail!("give --index with --size, or --from with --to"),
    }
    Ok(Outcome::Success)
}

fn encode_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| BASE64.encode(hash)).collect()
}
