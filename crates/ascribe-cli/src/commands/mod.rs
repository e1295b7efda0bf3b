//! One module per command; each returns an [`Outcome`] or an error for `main` to print.

mod init;
mod key;
mod ledger;
mod verify;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::Outcome;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let context = Context::resolve(&cli.location)?;
    match cli.command {
        Command::Init(args) => init::run(&context, args),
        Command::Verify(args) => verify::run(&context, args),
        Command::Ledger(command) => ledger::run(&context, command),
        Command::Key(command) => key::run(&context, command),
    }
}

/// Prints a value as one JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
