//! The audit views as HTML: the same pages in an exported report and under `/audit/` of the
//! gateway. Pages are self-contained (inline styles, no scripts, nothing fetched) and print
//! to PDF one alias per page.
//!
//! Timelines are SVG drawn here: one `rect.segment` per alias segment, a `line.rotation` per
//! rotation inside the window (`.alert` for rollbacks and incidents), a `line.drift` per drift
//! observation and a `rect.gap` where the alias did not exist.

use std::collections::HashMap;

use ascribe_ledger::Timestamp;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::alias::{AliasAtAnswer, AliasWindowAnswer};
use crate::checkpoint::CheckpointAnswer;
use crate::inference::{DecisionAnswer, InclusionAnswer, InferenceAnswer};
use crate::search::InferenceRow;

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1f24; margin: 2rem auto;
  max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.muted { color: #57606a; } code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0 1.2rem; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #d0d7de;
  vertical-align: top; overflow-wrap: break-word; }
td.mono, dd.mono, span.mono { overflow-wrap: anywhere; }
th { background: #f6f8fa; font-weight: 600; word-break: normal; }
dl { display: grid; grid-template-columns: 12rem 1fr; gap: 2px 12px; }
dt { color: #57606a; } dd { margin: 0; overflow-wrap: break-word; }
.legend span.entry { white-space: nowrap; }
.legend span.swatch { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px;
  border-radius: 2px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; }
.match { background: #dafbe1; } .mismatch, .alert { background: #ffebe9; color: #82071e; }
.undisclosed { background: #fff8c5; }
form.search { margin: 1rem 0; } form.search input[type=text] { width: 28rem; padding: 4px; }
svg.timeline { width: 100%; height: auto; }
svg.timeline text { font: 11px system-ui, sans-serif; }
svg.timeline .axis { stroke: #8c959f; }
svg.timeline line.rotation { stroke: #1b1f24; stroke-width: 1.5; }
svg.timeline line.rotation.alert { stroke: #cf222e; stroke-width: 2.5; }
svg.timeline line.drift { stroke: #bf8700; stroke-width: 2; }
svg.timeline rect.gap { fill: url(#hatch); stroke: #8c959f; }
section.alias { break-inside: avoid; }
@media print { body { margin: 0; max-width: none; font-size: 11px; }
  section.alias { break-after: page; } form.search, nav { display: none; } }
";

/// What an open segment's end says: it was still in force when the answer was given.
const STILL_IN_FORCE: &str = "still in force";

/// Segment colours, one per checkpoint in order of first appearance.
const PALETTE: [&str; 8] = [
    "#4e79a7", "#59a14f", "#b07aa1", "#f28e2b", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
];

/// How a page links to other pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// A standalone file: no links out, no search box.
    Standalone,
    /// Served by the gateway under `/audit/`: links between views and a search box.
    Gateway,
}

/// What a path segment may not hold as is: everything but RFC 3986's unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` as one path segment of a link: an inference id, a decision reference, a name.
pub fn path_segment(text: &str) -> String {
    utf8_percent_encode(text, PATH_SEGMENT).to_string()
}

/// A whole page around `body`.
pub fn page(title: &str, links: Links, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ascribe audit" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                @if links == Links::Gateway {
                    nav { a href="/audit/" { "Ascribe audit" } }
                    (search_form())
                }
                (body)
            }
        }
    }
}

/// The search box: a decision reference or an inference id.
pub fn search_form() -> Markup {
    html! {
        form.search method="get" action="/audit/search" {
            label for="q" { "Decision reference or inference id " }
            input #q type="text" name="q" placeholder="case-2026-0412 or inf_0193…";
            " "
            button type="submit" { "Find" }
        }
    }
}

/// The gateway's start page: the search box and every alias with links to its timeline.
pub fn index(aliases: &[(String, String)], default_window: &str) -> Markup {
    let body = html! {
        h1 { "Ascribe audit" }
        p.muted { "Which checkpoint decided: search a decision or an inference, or open an \
                   alias's timeline." }
        h2 { "Aliases" }
        table {
            tr { th { "alias" } th { "current deployment" } th {} }
            @for (alias, deployment) in aliases {
                tr {
                    td.mono { (alias) }
                    td.mono { (deployment) }
                    td { a href={ "/audit/aliases/" (path_segment(alias)) "?" (default_window) } {
                        "timeline" } }
                }
            }
        }
    };
    page("Start", Links::Gateway, body)
}

fn link(links: Links, prefix: &str, id: &str, text: &str) -> Markup {
    match links {
        Links::Standalone => html! { span.mono { (text) } },
        Links::Gateway => html! {
            a.mono href={ "/audit/" (prefix) "/" (path_segment(id)) } { (text) }
        },
    }
}

fn identity_badge(state: &str) -> Markup {
    html! { span class={ "badge " (state) } { (state) } }
}

/// Colours for the checkpoints of a report, stable across its timelines.
#[derive(Debug, Default)]
pub struct Colours(HashMap<String, &'static str>);

impl Colours {
    /// The colour of `checkpoint`, assigning the next one on first sight.
    pub fn of(&mut self, checkpoint: &str) -> &'static str {
        let next = PALETTE[self.0.len() % PALETTE.len()];
        self.0.entry(checkpoint.to_owned()).or_insert(next)
    }
}

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 10.0;
const RIGHT: f64 = 990.0;
const BAR_TOP: f64 = 28.0;
const BAR_HEIGHT: f64 = 36.0;
/// Segments shorter than this many units are widened to it, so that a brief incident stays
/// visible on a month-long timeline.
const MIN_SEGMENT_WIDTH: f64 = 3.0;

fn parse_or(text: &str, fallback: Timestamp) -> Timestamp {
    Timestamp::parse(text).unwrap_or(fallback)
}

/// The timeline picture of one alias over a window.
pub fn timeline(answer: &AliasWindowAnswer, colours: &mut Colours) -> Markup {
    let (from, to) = (answer.window.from, answer.window.to);
    let span = (to.unix_micros() - from.unix_micros()).max(1) as f64;
    let x = |instant: Timestamp| {
        let offset = (instant.unix_micros() - from.unix_micros()) as f64;
        LEFT + (RIGHT - LEFT) * (offset / span).clamp(0.0, 1.0)
    };
    let height = BAR_TOP + BAR_HEIGHT + 40.0;
    html! {
        svg.timeline viewBox={ "0 0 " (WIDTH) " " (height) } role="img"
            data-alias=(answer.alias) aria-label={ "Timeline of alias " (answer.alias) } {
            defs {
                pattern #hatch width="6" height="6" patternUnits="userSpaceOnUse"
                    patternTransform="rotate(45)" {
                    rect width="6" height="6" fill="#f6f8fa" {}
                    line x1="0" y1="0" x2="0" y2="6" stroke="#d0d7de" stroke-width="2" {}
                }
            }
            @for gap in &answer.gaps {
                @let (start, end) = (x(parse_or(&gap.from, from)), x(parse_or(&gap.to, to)));
                rect.gap x=(start) y=(BAR_TOP) width=((end - start).max(MIN_SEGMENT_WIDTH))
                    height=(BAR_HEIGHT) {
                    title { "alias did not exist " (gap.from) " .. " (gap.to) }
                }
            }
            @for segment in &answer.segments {
                @let segment = &segment.segment;
                @let start = x(parse_or(&segment.from, from));
                @let end = x(segment.to.as_deref().map_or(to, |end| parse_or(end, to)));
                @let width = (end - start).max(MIN_SEGMENT_WIDTH);
                rect.segment x=(start) y=(BAR_TOP) width=(width) height=(BAR_HEIGHT)
                    fill=(colours.of(&segment.checkpoint)) data-checkpoint=(segment.checkpoint)
                    data-deployment=(segment.deployment) {
                    title { (segment.deployment) " → " (segment.checkpoint) ", "
                        (segment.from) " .. " (segment.to.as_deref().unwrap_or(STILL_IN_FORCE)) }
                }
                @if width > 90.0 {
                    text x=(start + 4.0) y=(BAR_TOP + 22.0) fill="#fff" {
                        (short(&segment.deployment, width)) }
                }
            }
            @for (index, segment) in answer.segments.iter().enumerate() {
                @let segment = &segment.segment;
                @let start = parse_or(&segment.from, from);
                @let room = answer.segments.get(index + 1).map_or(RIGHT, |next| {
                    x(parse_or(&next.segment.from, to))
                }) - x(start);
                @if start > from && segment.rotation.kind != "created" {
                    @let alert = matches!(segment.rotation.kind.as_str(), "rollback" | "incident");
                    line class={ "rotation" @if alert { " alert" } } x1=(x(start))
                        x2=(x(start)) y1=(BAR_TOP - 10.0) y2=(BAR_TOP + BAR_HEIGHT + 4.0) {
                        title { (segment.rotation.kind) " by " (segment.rotation.actor) ": "
                            (segment.rotation.reason.as_deref().unwrap_or("-")) }
                    }
                    @if room > 8.0 * segment.rotation.kind.len() as f64 {
                        text x=(x(start) + 2.0) y=(BAR_TOP - 12.0)
                            fill=(if alert { "#cf222e" } else { "#1b1f24" }) {
                            (segment.rotation.kind) }
                    }
                }
            }
            @for observation in &answer.observations {
                @let at = x(parse_or(&observation.time, from));
                line.drift x1=(at) x2=(at) y1=(BAR_TOP + BAR_HEIGHT + 2.0)
                    y2=(BAR_TOP + BAR_HEIGHT + 14.0) {
                    title { (observation.body["kind"].as_str().unwrap_or("observation")) " at "
                        (observation.time) }
                }
            }
            line.axis x1=(LEFT) x2=(RIGHT) y1=(height - 16.0) y2=(height - 16.0) {}
            text x=(LEFT) y=(height - 3.0) { (from.to_string()) }
            text x=(RIGHT) y=(height - 3.0) text-anchor="end" { (to.to_string()) }
        }
    }
}

fn short(text: &str, width: f64) -> String {
    let fits = ((width - 8.0) / 6.5).max(1.0) as usize;
    if text.chars().count() <= fits {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(fits.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// One alias over a window: the timeline, then its segments as a table.
pub fn alias_section(answer: &AliasWindowAnswer, colours: &mut Colours, links: Links) -> Markup {
    html! {
        section.alias {
            h2 { "Alias " code { (answer.alias) } }
            (timeline(answer, colours))
            p.legend.muted { "Checkpoints:"
                @for checkpoint in answer.checkpoints() {
                    span.entry {
                        span.swatch style={ "background:" (colours.of(checkpoint)) } {}
                        code { (checkpoint) }
                    }
                    " "
                }
            }
            table {
                tr {
                    th { "from" } th { "to" } th { "deployment" } th { "checkpoint" }
                    th { "rotation" } th { "by" } th { "reason" } th { "inferences" }
                }
                @for segment in &answer.segments {
                    @let cause = &segment.segment.rotation;
                    tr {
                        td.mono { (segment.segment.from) }
                        td.mono { (segment.segment.to.as_deref().unwrap_or(STILL_IN_FORCE)) }
                        td.mono { (segment.segment.deployment)
                            @if segment.moving_name { " " span.badge.undisclosed {
                                "moving name" } } }
                        td { (link(links, "checkpoints", &segment.segment.checkpoint,
                                &segment.segment.checkpoint)) }
                        td { @if matches!(cause.kind.as_str(), "rollback" | "incident") {
                                span.badge.alert { (cause.kind) } } @else { (cause.kind) } }
                        td { (cause.actor) }
                        td { (cause.reason.as_deref().unwrap_or("")) }
                        td { (segment.inferences) }
                    }
                }
            }
            @if !answer.gaps.is_empty() {
                p.muted { "The alias did not exist: "
                    @for gap in &answer.gaps { span.mono { (gap.from) " .. " (gap.to) } " " } }
            }
            @if answer.observation_count > 0 {
                p { (answer.observation_count) " drift observation(s) of these deployments:" }
                table {
                    tr { th { "time" } th { "kind" } th { "deployment" } th { "served" } }
                    @for observation in &answer.observations {
                        tr {
                            td.mono { (observation.time) }
                            td { (observation.body["kind"].as_str().unwrap_or("")) }
                            td.mono { (observation.body["deployment"].as_str().unwrap_or("")) }
                            td.mono { (observation.body["served_model"].as_str()
                                .or(observation.body["system_fingerprint"].as_str())
                                .unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// A form to choose the window of an alias's timeline, filled with the current one.
pub fn window_form(answer: &AliasWindowAnswer) -> Markup {
    html! {
        form.search method="get" action={ "/audit/aliases/" (path_segment(&answer.alias)) } {
            label for="from" { "From " }
            input #from type="text" name="from" value=(answer.window.from.to_string());
            label for="to" { " to " }
            input #to type="text" name="to" value=(answer.window.to.to_string());
            " "
            button type="submit" { "Show" }
            span.muted { " (RFC 3339, UTC; or " a href={ "?days=1" } { "1 day" } ", "
                a href={ "?days=30" } { "30 days" } ")" }
        }
    }
}

/// Inference rows as a table, requested and served model in separate columns.
pub fn inference_table(rows: &[InferenceRow], links: Links) -> Markup {
    html! {
        table {
            tr {
                th { "time" } th { "decision" } th { "inference" } th { "caller" }
                th { "requested" } th { "checkpoint" } th { "served" } th { "identity" }
                th { "status" }
            }
            @for row in rows {
                tr {
                    td.mono { (row.time) }
                    td { @if let Some(decision) = &row.decision {
                        (link(links, "decisions", decision, decision)) } }
                    td { (link(links, "inferences", &row.inference_id, &row.inference_id)) }
                    td { (row.caller) }
                    td.mono { (row.requested_model) }
                    td { (link(links, "checkpoints", &row.checkpoint, &row.checkpoint)) }
                    td.mono { (row.served_model.as_deref().unwrap_or("")) }
                    td { (identity_badge(&row.identity_match)) }
                    td { (row.status) " "
                        @match (row.outcome.as_str(), row.completed) {
                            ("stream_open", Some(true)) => { "streamed, completed" }
                            ("stream_open", Some(false)) => {
                                "streamed " span.badge.alert { "cut" } }
                            ("stream_open", None) => { "streaming" }
                            (outcome, _) => { (outcome) }
                        } }
                }
            }
        }
    }
}

/// The page of one inference.
pub fn inference_page(answer: &InferenceAnswer, links: Links) -> Markup {
    page(
        &answer.record.inference_id,
        links,
        html! {
            h1 { "Inference " code { (answer.record.inference_id) } }
            (inference_details(answer, links))
        },
    )
}

/// The page of every inference of one decision.
pub fn decision_page(answer: &DecisionAnswer, links: Links) -> Markup {
    page(
        &answer.decision,
        links,
        html! {
            h1 { "Decision " code { (answer.decision) } }
            p.muted { (answer.inferences.len()) " inference(s) carry this reference." }
            @for inference in &answer.inferences {
                h2 { "Inference " (link(links, "inferences", &inference.record.inference_id,
                    &inference.record.inference_id)) }
                (inference_details(inference, links))
            }
        },
    )
}

fn inference_details(answer: &InferenceAnswer, links: Links) -> Markup {
    let rotation = answer.rotation.as_ref().map(|segment| &segment.rotation);
    html! {
        dl {
            dt { "recorded" } dd.mono { (answer.time) " (ledger entry " (answer.seq) ")" }
            dt { "caller" } dd { (answer.record.caller) }
            dt { "decision" } dd { @if let Some(decision) = &answer.record.decision {
                (link(links, "decisions", decision, decision)) } @else { "-" } }
            dt { "requested model" } dd.mono { (answer.record.requested_model) }
            dt { "alias" } dd.mono { (answer.record.alias.as_deref().unwrap_or("-")) }
            dt { "deployment" } dd.mono { (answer.record.deployment)
                @if answer.record.moving_name { " " span.badge.undisclosed { "moving name" } } }
            dt { "checkpoint" } dd { (link(links, "checkpoints", &answer.record.checkpoint,
                &answer.record.checkpoint)) }
            dt { "served model" } dd.mono { (answer.served_model.as_deref().unwrap_or("-")) }
            dt { "system fingerprint" } dd.mono {
                (answer.system_fingerprint.as_deref().unwrap_or("-")) }
            dt { "served identity" } dd { (identity_badge(&answer.record.identity_match))
                @if let Some(kind) = &answer.record.mismatch_kind { " " (kind) } }
            dt { "status" } dd { (answer.record.status) " " (answer.record.outcome) }
            @if let Some(completion) = &answer.completion {
                dt { "stream" } dd { @if completion.record.completed { "completed" }
                    @else { span.badge.alert { "cut" } } ", " (completion.record.n_bytes)
                    " bytes" }
            }
            @if let Some(cause) = rotation {
                dt { "put there by" } dd { (cause.kind) " by " (cause.actor) ": "
                    (cause.reason.as_deref().unwrap_or("-"))
                    " (entry " (cause.seq) ")" }
            }
            @for document in &answer.documents {
                dt { (document.role) } dd { span.mono { (document.name) } " stored "
                    (document.stored_at) " " span.mono.muted { (document.digest) } }
            }
            @for observation in &answer.observations {
                dt { "observation" } dd { (observation.body["kind"].as_str().unwrap_or(""))
                    " (entry " (observation.seq) ")" }
            }
            dt { "proof" } dd { @match &answer.inclusion_proof {
                Some(InclusionAnswer::Proof { tree_size, .. }) => {
                    "included in the signed tree head of size " (tree_size) }
                Some(InclusionAnswer::Pending { pending }) => { (pending) }
                None => { "no signed tree head yet" }
            } }
            @if let Some(receipt) = &answer.receipt {
                dt { "receipt" } dd.mono { (receipt) }
            }
        }
    }
}

/// The page of one alias at one instant.
pub fn alias_at_page(answer: &AliasAtAnswer, links: Links) -> Markup {
    page(
        &answer.alias,
        links,
        html! {
            h1 { "Alias " code { (answer.alias) } " at " (answer.at) }
            @match &answer.segment {
                None => { p { "The alias did not exist at that instant." } }
                Some(in_force) => {
                    @let segment = &in_force.segment;
                    dl {
                        dt { "deployment" } dd.mono { (segment.deployment) }
                        dt { "checkpoint" } dd { (link(links, "checkpoints",
                            &segment.checkpoint, &segment.checkpoint)) }
                        dt { "since" } dd.mono { (segment.from) }
                        dt { "until" } dd.mono { (segment.to.as_deref().unwrap_or(STILL_IN_FORCE)) }
                        dt { "put there by" } dd { (segment.rotation.kind) " by "
                            (segment.rotation.actor) ": "
                            (segment.rotation.reason.as_deref().unwrap_or("-")) }
                    }
                }
            }
        },
    )
}

/// The page of one checkpoint's production life.
pub fn checkpoint_page(answer: &CheckpointAnswer, links: Links) -> Markup {
    let checkpoint = &answer.checkpoint;
    page(
        &checkpoint.id,
        links,
        html! {
            h1 { "Checkpoint " code { (checkpoint.id) } }
            dl {
                dt { "kind" } dd { (checkpoint.kind) }
                dt { "registered" } dd { (checkpoint.registered_at) " by "
                    (checkpoint.registered_by) }
                @for document in &answer.documents {
                    dt { (document.role) } dd { span.mono { (document.name) } " stored "
                        (document.stored_at) }
                }
                dt { "inferences served" } dd { (answer.inferences) }
                dt { "decisions" } dd { (answer.decisions) }
                dt { "first inference" } dd { @if let Some(row) = &answer.first_inference {
                    (link(links, "inferences", &row.inference_id, &row.inference_id)) " "
                    (row.time) } @else { "-" } }
                dt { "last inference" } dd { @if let Some(row) = &answer.last_inference {
                    (link(links, "inferences", &row.inference_id, &row.inference_id)) " "
                    (row.time) } @else { "-" } }
            }
            h2 { "In production" }
            table {
                tr { th { "alias" } th { "from" } th { "to" } th { "deployment" }
                    th { "put there by" } th { "inferences" } }
                @for period in &answer.periods {
                    tr {
                        td.mono { (period.segment.alias) }
                        td.mono { (period.segment.from) }
                        td.mono { (period.segment.to.as_deref().unwrap_or(STILL_IN_FORCE)) }
                        td.mono { (period.segment.deployment) }
                        td { (period.segment.rotation.kind) " by "
                            (period.segment.rotation.actor) }
                        td { (period.inferences) }
                    }
                }
            }
            @if !answer.decision_references.is_empty() {
                h2 { "Decisions" }
                p { @for reference in &answer.decision_references {
                    (link(links, "decisions", reference, reference)) " " } }
            }
        },
    )
}
