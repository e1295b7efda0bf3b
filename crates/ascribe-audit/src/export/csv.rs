//! The CSV export: one row per inference, requested and served model side by side.

use std::io::Write;

use ascribe_store::query::read;
use ascribe_store::Backend;

use super::{ExportSummary, PAGE};
use crate::search::{Filter, InferenceRow};
use crate::window::seq_range;
use crate::{AuditError, Window};

const HEADER: [&str; 16] = [
    "inference_id",
    "time",
    "seq",
    "caller",
    "decision",
    "requested_model",
    "alias",
    "deployment",
    "checkpoint",
    "served_model",
    "system_fingerprint",
    "identity_match",
    "status",
    "outcome",
    "stream",
    "completed",
];

/// A cell a spreadsheet will show as text: one starting with a formula character gets a `'`
/// in front, so that a caller-chosen decision reference cannot run as a formula.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn record(row: &InferenceRow) -> [String; 16] {
    let optional = |value: &Option<String>| cell(value.as_deref().unwrap_or(""));
    [
        cell(&row.inference_id),
        row.time.clone(),
        row.seq.to_string(),
        cell(&row.caller),
        optional(&row.decision),
        cell(&row.requested_model),
        optional(&row.alias),
        cell(&row.deployment),
        cell(&row.checkpoint),
        optional(&row.served_model),
        optional(&row.system_fingerprint),
        row.identity_match.clone(),
        row.status.to_string(),
        row.outcome.clone(),
        row.stream.to_string(),
        row.completed
            .map(|done| done.to_string())
            .unwrap_or_default(),
    ]
}

/// Writes every inference recorded in `window` as CSV.
pub fn write_csv(
    backend: &mut dyn Backend,
    window: Window,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let (start, end) = read(backend, |tx| seq_range(tx, &window))?;
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(HEADER)?;

    let filter = Filter::default();
    let mut next = start;
    let mut rows = 0;
    loop {
        let page = filter.page(backend, next, end, PAGE)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for row in &page {
            writer.write_record(record(row))?;
        }
        rows += page.len() as u64;
    }
    writer.flush()?;
    Ok(ExportSummary {
        rows,
        ..ExportSummary::default()
    })
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formula_characters_are_neutralised() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("case-2026-0412"), "case-2026-0412");
        assert_eq!(cell(""), "");
    }
}
