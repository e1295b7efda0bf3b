//! One module per command; each returns an [`Outcome`] or an error for `main` to print.

mod alias;
mod apply;
mod audit;
mod checkpoint;
mod deployment;
mod export;
pub mod hash;
mod init;
mod key;
mod ledger;
mod receipt;
mod replay;
pub mod serve;
mod verify;

use anyhow::Context as _;
use ascribe_store::{AppendedEntry, Ledger, PendingEntry};

use crate::cli::{Cli, Command};
use crate::config::Loaded;
use crate::context::Context;
use crate::Outcome;

/// Runs the parsed command line with its configuration.
pub fn run(cli: Cli, loaded: Loaded) -> anyhow::Result<Outcome> {
    let context = Context::resolve(&cli.location, &loaded.config)?;
    match cli.command {
        Command::Serve(args) => serve::run(&context, loaded, args),
        Command::Init(args) => init::run(&context, args, loaded.config.db.as_deref()),
        Command::Verify(args) => verify::run(&context, args),
        Command::Ledger(command) => ledger::run(&context, command),
        Command::Key(command) => key::run(&context, command),
        Command::Hash(args) => hash::run(args),
        Command::Checkpoint(command) => checkpoint::run(&context, command),
        Command::Deployment(command) => deployment::run(&context, command),
        Command::Alias(command) => alias::run(&context, command),
        Command::Apply(args) => apply::run(&context, args),
        Command::Audit(command) => audit::run(&context, command),
        Command::Receipt(command) => receipt::run(&context, command),
        Command::Replay(args) => replay::run(&context, args),
        Command::Export(args) => export::run(&context, args),
    }
}

/// Prints a value as one JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Appends one entry and returns its seq, or the reason it was refused.
pub fn append(ledger: &mut Ledger, pending: PendingEntry) -> anyhow::Result<u64> {
    let outcome = ledger.append_batch(std::slice::from_ref(&pending))?.pop();
    match outcome.context("the ledger returned no outcome")? {
        Ok(appended) => Ok(appended.entry.seq),
        Err(rejection) => Err(anyhow::Error::msg(rejection.to_string())),
    }
}

/// Appends entries in one transaction; each may be refused on its own.
pub fn append_all(
    ledger: &mut Ledger,
    entries: Vec<PendingEntry>,
) -> anyhow::Result<Vec<Result<AppendedEntry, String>>> {
    let outcomes = ledger.append_batch(&entries)?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.map_err(|error| error.to_string()))
        .collect())
}
