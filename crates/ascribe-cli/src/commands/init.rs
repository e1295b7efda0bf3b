//! `ascribe init`: the signing key, the database schema and the ledger's identity.

use anyhow::Context as _;
use ascribe_ledger::NoteSigner;
use ascribe_store::{open_backend, Ledger};
use serde_json::json;

use crate::cli::InitArgs;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Creates what is missing and leaves what exists: running it twice is harmless.
pub fn run(context: &Context, args: InitArgs) -> anyhow::Result<Outcome> {
    let signer = load_or_create_key(context, args.origin.as_deref())?;
    let mut backend = open_backend(&context.location, true)?;
    Ledger::init(backend.as_mut(), &signer)
        .with_context(|| format!("cannot initialise the ledger in {}", backend.describe()))?;
    ascribe_access::create_tables(backend.as_mut())?;
    ascribe_registry::create_tables(backend.as_mut())?;
    ascribe_inference::create_tables(backend.as_mut())?;
    tracing::info!(origin = signer.name(), db = %backend.describe(), "ledger initialised");

    let public_key = signer.verifier().public_key_text();
    if args.json {
        print_json(&json!({
            "origin": signer.name(),
            "database": backend.describe(),
            "private_key_file": context.keys.private_key,
            "public_key_file": context.keys.public_key,
            "public_key": public_key,
        }))?;
    } else {
        println!("ledger      {}", signer.name());
        println!("database    {}", backend.describe());
        println!(
            "private key {} (mode 0600, keep it secret)",
            context.keys.private_key.display()
        );
        println!("public key  {}", context.keys.public_key.display());
        println!();
        println!("Give verifiers this public key:");
        println!("{public_key}");
    }
    Ok(Outcome::Success)
}

fn load_or_create_key(context: &Context, origin: Option<&str>) -> anyhow::Result<NoteSigner> {
    if context.keys.private_key.exists() {
        let signer = context.keys.load_signer()?;
        if origin.is_some_and(|origin| origin != signer.name()) {
            anyhow::bail!(
                "{} already holds the key of ledger `{}`; choose another --home for a new ledger",
                context.keys.private_key.display(),
                signer.name()
            );
        }
        return Ok(signer);
    }
    let origin = match origin {
        Some(origin) => origin.to_owned(),
        None => default_origin()?,
    };
    Ok(context.keys.create(&origin)?)
}

/// `ascribe/<8 hex digits>`: unique enough that two ledgers never share an origin by accident.
fn default_origin() -> anyhow::Result<String> {
    let probe = NoteSigner::generate("ascribe")?;
    let suffix = &hex::encode(probe.verifier().public_key_bytes())[..8];
    Ok(format!("ascribe/{suffix}"))
}
