//! The `ascribe` command: one program for the ledger, the registry, the gateway and the audit
//! surface. This file parses the command line, runs one command and turns its outcome into
//! an exit code.
//!
//! Exit codes: 0 success; 1 the command ran and found a problem (`verify` found a bad entry);
//! 2 the command could not run (bad flags, unreachable database, missing key).

mod cli;
mod commands;
mod context;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::Cli;

/// What a command reports back to `main`.
pub enum Outcome {
    /// Everything checked out.
    Success,
    /// The command ran and found a problem it already reported.
    ProblemFound,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match commands::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::ProblemFound) => ExitCode::from(1),
        Err(error) => {
            eprintln!("ascribe: {error:#}");
            if let Some(hint) = context::hint_for(&error) {
                eprintln!("\n{hint}");
            }
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ASCRIBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
