//! The `ascribe` command: one program for the ledger, the registry, the gateway and the audit
//! surface. This file parses the command line, runs one command and turns its outcome into
//! an exit code.
//!
//! Exit codes: 0 success; 1 the command ran and found a problem (`verify` found a bad entry);
//! 2 the command could not run (bad flags, unreachable database, missing key).

mod cli;
mod commands;
mod config;
mod context;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::config::{Loaded, LogFormat};

/// What a command reports back to `main`.
pub enum Outcome {
    /// Everything checked out.
    Success,
    /// The command ran and found a problem it already reported.
    ProblemFound,
}

fn main() -> ExitCode {
    stop_quietly_on_closed_stdout();
    let wants_json = std::env::args_os().any(|argument| argument == "--json");
    let cli = Cli::parse();
    let loaded = match config::load_for(&cli) {
        Ok(loaded) => loaded,
        Err(error) => return report(&error, wants_json),
    };
    if let Err(error) = init_logging(&cli, &loaded) {
        return report(&error, wants_json);
    }
    match commands::run(cli, loaded) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::ProblemFound) => ExitCode::from(1),
        Err(error) => report(&error, wants_json),
    }
}

/// Prints why the command could not run, with a hint where one is known, and exits 2.
fn report(error: &anyhow::Error, wants_json: bool) -> ExitCode {
    let hint = context::hint_for(error);
    eprintln!("ascribe: {error:#}");
    if let Some(hint) = &hint {
        eprintln!("\n{hint}");
    }
    if wants_json {
        // `--json` promises one JSON document on stdout, failures included.
        let document = serde_json::json!({
            "ok": false,
            "error": format!("{error:#}"),
            "hint": hint,
        });
        println!("{document}");
    }
    ExitCode::from(2)
}

/// Ends the process silently when stdout is closed early (`ascribe ... | head`), with the
/// status a shell reports for a process stopped by SIGPIPE (141), so that `set -o pipefail`
/// still sees it. Without this, the first `println!` after the pipe closed panics with a
/// backtrace.
fn stop_quietly_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}

/// Logs go to stderr, filtered by `log.level` (default: `info` for `ascribe serve`, whose
/// log is its record of work, `warn` for the other commands, whose output is on stdout).
fn init_logging(cli: &Cli, loaded: &Loaded) -> anyhow::Result<()> {
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let level = loaded.config.log.level.as_deref().unwrap_or(default_level);
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|error| {
        anyhow::anyhow!("log.level `{level}` is not a level or a tracing filter: {error}")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format.unwrap_or(loaded.config.log.format) {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    Ok(())
}
