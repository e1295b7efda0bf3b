//! `ascribe verify`: the whole ledger, recomputed and checked against its signed tree heads.

use std::io::BufReader;
use std::path::Path;

use anyhow::Context as _;
use ascribe_audit::package::verify_package;
use ascribe_ledger::NoteVerifier;
use ascribe_store::{query, verify_ledger};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::VerifyArgs;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Verifies and reports; a failed check is exit code 1, not an error.
pub fn run(context: &Context, args: VerifyArgs) -> anyhow::Result<Outcome> {
    if let Some(path) = &args.export {
        let verifier = context
            .trusted_key(args.public_key.as_deref())
            .map_err(|error| {
                anyhow::anyhow!(
                "{error}\nGive the ledger's public key with --public-key FILE (the `ledger.pub` \
                 its operator handed over); verifying a package needs no database."
            )
            })?;
        return verify_export(path, &verifier, args.json);
    }
    let verifier = context.trusted_key(args.public_key.as_deref())?;
    let mut backend = context.backend()?;

    let progress = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "verifying {bar:40} {pos}/{len} entries ({per_sec})",
    )?);
    let mut report = verify_ledger(backend.as_mut(), &verifier, &mut |done, total| {
        progress.set_length(total.max(done));
        progress.set_position(done);
    })?;
    progress.finish_and_clear();
    if args.all_signed && report.ok {
        // Every head was just checked, so the largest one is genuine.
        let signed =
            query::latest_tree_head(backend.as_mut())?.map_or(0, |record| record.head.size);
        if signed < report.entries {
            report.error = Some(format!(
                "entries seq {signed}..{} follow the latest signed tree head (size {signed}): no \
                 signature covers them",
                report.entries
            ));
            report.ok = false;
            report.first_bad_seq = Some(signed);
            report.entries = signed;
            report.root = None;
        }
    }

    if args.json {
        print_json(&report)?;
    } else if report.ok {
        println!(
            "ok: {} entries, root {}, {} signed tree heads checked",
            report.entries,
            report.root.as_deref().unwrap_or(""),
            report.heads_checked
        );
    } else {
        let place = report
            .first_bad_seq
            .map_or("a tree head".to_owned(), |seq| format!("seq {seq}"));
        println!(
            "FAILED at {place}: {}",
            report.error.as_deref().unwrap_or("unknown")
        );
        println!(
            "  {} entries before it verified. Receipts callers hold, and evidence packages \
             exported earlier, show what the ledger held (`ascribe receipt verify TOKEN \
             --against-ledger`); docs/ledger.md, Verification, says what each failure means.",
            report.entries
        );
    }
    Ok(if report.ok {
        Outcome::Success
    } else {
        Outcome::ProblemFound
    })
}

/// Verifies an evidence package offline: no database is opened.
fn verify_export(path: &Path, verifier: &NoteVerifier, json: bool) -> anyhow::Result<Outcome> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the package {}", path.display()))?;
    match verify_package(BufReader::new(file), verifier) {
        Ok(summary) => {
            if json {
                print_json(&json!({"ok": true, "package": summary}))?;
            } else {
                println!(
                    "ok: {} entries of {} from {} to {} and {} context entries, proved against the \
                     signed tree head of size {} (complete as of that head)",
                    summary.entries,
                    summary.origin,
                    summary.from,
                    summary.to,
                    summary.context,
                    summary.tree_size
                );
            }
            Ok(Outcome::Success)
        }
        Err(failure) => {
            if json {
                print_json(&json!({"ok": false, "line": failure.line, "error": failure.problem}))?;
            } else {
                println!("FAILED at line {}: {}", failure.line, failure.problem);
            }
            Ok(Outcome::ProblemFound)
        }
    }
}
