//! `ascribe apply FILE`: the declarative registry.

use std::path::Path;

use ascribe_registry::apply;
use serde_json::json;

use crate::cli::ApplyArgs;
use crate::commands::checkpoint::hash_weights;
use crate::commands::{append_all, print_json};
use crate::context::{actor, Context};
use crate::Outcome;

/// Plans, prints, and unless `--dry-run` writes the changes in one transaction.
pub fn run(context: &Context, args: ApplyArgs) -> anyhow::Result<Outcome> {
    let file = apply::parse(&args.file)?;
    let base = args.file.parent().unwrap_or(Path::new(""));
    let mut ledger = context.ledger()?;
    let hasher = |path: &Path| hash_weights(path).map_err(|error| format!("{error:#}"));
    let plan = apply::plan(
        ledger.backend(),
        &file,
        base,
        args.reason.as_deref(),
        &hasher,
    )?;
    let described: Vec<String> = plan.iter().map(apply::PlannedChange::describe).collect();

    if args.dry_run || plan.is_empty() {
        print_plan(args.output.json, &described, &[], args.dry_run)?;
        return Ok(Outcome::Success);
    }
    let actor = actor(&args.actor);
    let entries = plan
        .into_iter()
        .map(|change| change.into_entry(&actor))
        .collect();
    let outcomes = append_all(&mut ledger, entries)?;
    let results: Vec<Result<u64, String>> = outcomes
        .into_iter()
        .map(|outcome| outcome.map(|appended| appended.entry.seq))
        .collect();
    print_plan(args.output.json, &described, &results, false)?;
    let refused = results.iter().filter(|result| result.is_err()).count();
    if refused > 0 {
        anyhow::bail!(
            "{refused} of {} changes were refused; fix the file and apply it again",
            results.len()
        );
    }
    Ok(Outcome::Success)
}

fn print_plan(
    json: bool,
    described: &[String],
    results: &[Result<u64, String>],
    dry_run: bool,
) -> anyhow::Result<()> {
    if json {
        let changes: Vec<_> = described
            .iter()
            .enumerate()
            .map(|(index, change)| match results.get(index) {
                Some(Ok(seq)) => json!({"change": change, "seq": seq}),
                Some(Err(error)) => json!({"change": change, "refused": error}),
                None => json!({"change": change}),
            })
            .collect();
        return print_json(&json!({"dry_run": dry_run, "changes": changes}));
    }
    if described.is_empty() {
        println!("nothing to change: the registry already matches");
    }
    for (index, change) in described.iter().enumerate() {
        match results.get(index) {
            Some(Ok(seq)) => println!("done     {change} (seq {seq})"),
            Some(Err(error)) => println!("refused  {change}: {error}"),
            None => println!("planned  {change}"),
        }
    }
    Ok(())
}
