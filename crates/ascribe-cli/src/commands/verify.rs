//! `ascribe verify`: the whole ledger, recomputed and checked against its signed tree heads.

use ascribe_store::verify_ledger;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::VerifyArgs;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Verifies and reports; a failed check is exit code 1, not an error.
pub fn run(context: &Context, args: VerifyArgs) -> anyhow::Result<Outcome> {
    let verifier = context.trusted_key(args.public_key.as_deref())?;
    let mut backend = context.backend()?;

    let progress = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "verifying {bar:40} {pos}/{len} entries ({per_sec})",
    )?);
    let report = verify_ledger(backend.as_mut(), &verifier, &mut |done, total| {
        progress.set_length(total.max(done));
        progress.set_position(done);
    })?;
    progress.finish_and_clear();

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
    }
    Ok(if report.ok {
        Outcome::Success
    } else {
        Outcome::ProblemFound
    })
}
