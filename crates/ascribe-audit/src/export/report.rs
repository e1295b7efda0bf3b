//! The HTML report: per alias a timeline and its segments, then the window's decisions.

use std::io::Write;

use ascribe_registry::queries;
use ascribe_store::query::{self, read};
use ascribe_store::Backend;
use maud::html;

use super::{ExportSummary, PAGE};
use crate::html::{self, Colours, Links};
use crate::search::Filter;
use crate::window::seq_range;
use crate::{alias, AuditError, Window};

/// The decisions table of a report stops after this many rows; the CSV export has them all.
pub const MAX_REPORT_DECISIONS: u64 = 5000;

/// Writes the HTML report of `window`.
pub fn write_html(
    backend: &mut dyn Backend,
    window: Window,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let mut colours = Colours::default();
    let mut sections = Vec::new();
    for record in queries::aliases(backend)? {
        let answer = alias::window(backend, &record.name, window)?;
        if answer.segments.is_empty() {
            continue;
        }
        sections.push(html::alias_section(
            &answer,
            &mut colours,
            Links::Standalone,
        ));
    }

    let (start, end) = read(backend, |tx| seq_range(tx, &window))?;
    let total = read(backend, |tx| {
        let sql = "SELECT COUNT(*) FROM inferences WHERE seq >= $1 AND seq < $2 \
                   AND decision IS NOT NULL";
        let row = tx.query_row(sql, &[start.into(), end.into()])?;
        row.map_or(Ok(0), |row| row[0].count("count"))
    })?;
    let filter = Filter {
        with_decision: true,
        ..Filter::default()
    };
    let mut decisions = Vec::new();
    let mut next = start;
    while (decisions.len() as u64) < MAX_REPORT_DECISIONS {
        let page = filter.page(backend, next, end, PAGE)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        decisions.extend(page);
    }
    decisions.truncate(MAX_REPORT_DECISIONS as usize);

    let head = query::latest_tree_head(backend)?;
    let origin = query::meta(backend, "origin")?.unwrap_or_default();
    let title = format!("{} .. {}", window.from, window.to);
    let body = html! {
        h1 { "Which checkpoint served, " (window.from) " .. " (window.to) }
        p.muted {
            "Ledger " code { (origin) }
            @if let Some(head) = &head {
                ", signed tree head of size " (head.head.size) " signed " (head.signed_at)
            }
            ". Each bar is a period during which the alias pointed at one deployment; its colour \
             is the checkpoint. Marks above the bar are rotations (red: rollback or incident), \
             ticks below are drift observations."
        }
        @if sections.is_empty() { p { "No alias existed during this window." } }
        @for section in &sections { (section) }
        section {
            h2 { "Decisions" }
            p.muted { (total) " inference(s) in the window carry a decision reference"
                @if total > MAX_REPORT_DECISIONS {
                    "; the first " (MAX_REPORT_DECISIONS) " are listed, the CSV export has all"
                } "." }
            (html::inference_table(&decisions, Links::Standalone))
        }
    };
    let page = html::page(&title, Links::Standalone, body);
    out.write_all(page.into_string().as_bytes())?;
    out.flush()?;
    Ok(ExportSummary {
        rows: decisions.len() as u64,
        ..ExportSummary::default()
    })
}
