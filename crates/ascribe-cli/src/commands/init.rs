//! `ascribe init`: the signing key, the database schema and the ledger's identity.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use ascribe_ledger::NoteSigner;
use ascribe_store::{open_backend, Ledger};
use serde_json::json;

use crate::cli::InitArgs;
use crate::commands::print_json;
use crate::config;
use crate::context::Context;
use crate::Outcome;

/// Creates what is missing and leaves what exists: running it twice is harmless.
pub fn run(context: &Context, args: InitArgs, db: Option<&str>) -> anyhow::Result<Outcome> {
    let signer = load_or_create_key(context, args.origin.as_deref())?;
    let config_file = write_example_config(context, db)?;
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
            "config_file": config_file,
        }))?;
    } else {
        println!("ledger      {}", signer.name());
        println!("database    {}", backend.describe());
        println!(
            "private key {} (mode 0600, keep it secret)",
            context.keys.private_key.display()
        );
        println!("public key  {}", context.keys.public_key.display());
        println!("settings    {}", config_file.display());
        println!();
        println!("Give verifiers this public key:");
        println!("{public_key}");
    }
    Ok(Outcome::Success)
}

/// Writes `<home>/ascribe.toml` with every setting commented out at its default, unless a
/// file is there already; names the database when it is not the default one, so that later
/// commands find it without --db. Mode 0600: a database URL may hold a password.
fn write_example_config(context: &Context, db: Option<&str>) -> anyhow::Result<PathBuf> {
    let path = context.home.join(config::FILE_NAME);
    if path.exists() {
        return Ok(path);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(config::example(db).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
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
