//! Offline verification of a JSONL evidence package with nothing but the ledger's public key.
//!
//! This module never opens a database: it reads the package, line by line, and keeps
//! O(log n) hashes. The steps are those of `docs/export.md`, so a verifier written elsewhere
//! from that page accepts and refuses the same packages.

use std::io::BufRead;

use ascribe_ledger::merkle::{self, Frontier};
use ascribe_ledger::{Entry, Hash, NoteVerifier, Timestamp};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use crate::export::PACKAGE_FORMAT;

/// What a package that verified contains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageSummary {
    /// The ledger's name.
    pub origin: String,
    /// The window's start.
    pub from: String,
    /// The window's end.
    pub to: String,
    /// The first `seq` of the window.
    pub first_seq: u64,
    /// One past its last `seq`.
    pub end_seq: u64,
    /// Entry lines checked.
    pub entries: u64,
    /// Context lines checked.
    pub context: u64,
    /// The size of the signed tree head everything was proved against.
    pub tree_size: u64,
}

/// Why a package does not verify: the 1-based line and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("line {line}: {problem}")]
pub struct PackageError {
    /// The line at fault (the line after the last one, for a package cut short).
    pub line: u64,
    /// What is wrong.
    pub problem: String,
}

struct Header {
    origin: String,
    from: Timestamp,
    to: Timestamp,
    from_text: String,
    to_text: String,
    first_seq: u64,
    end_seq: u64,
    tree_size: u64,
    root: Hash,
    frontier: Frontier,
    consistency: Vec<Hash>,
}

/// Verifies the package read from `input` against `verifier`, the trusted public key.
pub fn verify_package(
    input: impl BufRead,
    verifier: &NoteVerifier,
) -> Result<PackageSummary, PackageError> {
    let mut lines = input.lines();
    let mut number = 0u64;
    let mut next_line = |number: &mut u64| -> Result<Option<Value>, PackageError> {
        *number += 1;
        let fail = |problem: String| PackageError {
            line: *number,
            problem,
        };
        match lines.next() {
            None => Ok(None),
            Some(Err(error)) => Err(fail(format!("cannot read: {error}"))),
            Some(Ok(text)) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| fail(format!("not JSON: {error}"))),
        }
    };

    let first = next_line(&mut number)?.ok_or_else(|| at(1, "the package is empty"))?;
    let header = header(&first, verifier).map_err(|problem| at(1, &problem))?;
    let mut frontier = header.frontier.clone();
    let (mut entries, mut context) = (0u64, 0u64);
    let (mut saw_before, mut saw_after) = (false, false);
    let mut last_time: Option<Timestamp> = None;

    loop {
        let Some(value) = next_line(&mut number)? else {
            return Err(at(
                number,
                "the package ends without its `end` line: it was cut short",
            ));
        };
        let fail = |problem: String| PackageError {
            line: number,
            problem,
        };
        match value["type"].as_str() {
            Some("context") => {
                if entries > 0 {
                    return Err(fail("context lines must come before entry lines".into()));
                }
                let role = check_context(&value, &header).map_err(fail)?;
                let seen = match role.as_str() {
                    "before" => Some(&mut saw_before),
                    "after" => Some(&mut saw_after),
                    _ => None,
                };
                if let Some(seen) = seen {
                    if *seen {
                        return Err(fail(format!("a second `{role}` context line")));
                    }
                    *seen = true;
                }
                context += 1;
            }
            Some("entry") => {
                let expected = header.first_seq + entries;
                let (entry, leaf) =
                    check_entry(&value, expected, &header, last_time).map_err(fail)?;
                last_time = Some(entry.time);
                frontier.push(leaf);
                entries += 1;
            }
            Some("end") => {
                check_end(
                    &value, &header, &frontier, entries, context, saw_before, saw_after,
                )
                .map_err(fail)?;
                if next_line(&mut number)?.is_some() {
                    return Err(at(number, "a line follows the `end` line"));
                }
                return Ok(PackageSummary {
                    origin: header.origin,
                    from: header.from_text,
                    to: header.to_text,
                    first_seq: header.first_seq,
                    end_seq: header.end_seq,
                    entries,
                    context,
                    tree_size: header.tree_size,
                });
            }
            other => return Err(fail(format!("unknown line type {other:?}"))),
        }
    }
}

fn at(line: u64, problem: &str) -> PackageError {
    PackageError {
        line,
        problem: problem.to_owned(),
    }
}

fn text<'a>(value: &'a Value, name: &str) -> Result<&'a str, String> {
    value[name]
        .as_str()
        .ok_or_else(|| format!("`{name}` must be a string"))
}

fn number(value: &Value, name: &str) -> Result<u64, String> {
    value[name]
        .as_u64()
        .ok_or_else(|| format!("`{name}` must be a non-negative integer"))
}

fn hashes(value: &Value, name: &str) -> Result<Vec<Hash>, String> {
    let items = value[name]
        .as_array()
        .ok_or_else(|| format!("`{name}` must be an array of base64 hashes"))?;
    items
        .iter()
        .map(|item| {
            let bytes = item
                .as_str()
                .and_then(|text| BASE64.decode(text).ok())
                .ok_or_else(|| format!("`{name}` holds something that is not base64"))?;
            Hash::try_from(bytes.as_slice())
                .map_err(|_| format!("`{name}` holds a hash that is not 32 bytes"))
        })
        .collect()
}

fn header(value: &Value, verifier: &NoteVerifier) -> Result<Header, String> {
    if value["type"] != "header" || value["format"] != PACKAGE_FORMAT {
        return Err(format!(
            "the first line must be a `header` of format `{PACKAGE_FORMAT}`"
        ));
    }
    let head = verifier
        .verify_note(text(value, "tree_head")?)
        .map_err(|error| format!("the signed tree head does not verify: {error}"))?;
    let origin = text(value, "origin")?.to_owned();
    if head.origin != origin || head.origin != verifier.name() {
        return Err(format!(
            "the package is from ledger `{origin}`, its tree head from `{}`, and the trusted \
             key is `{}`",
            head.origin,
            verifier.name()
        ));
    }
    let (from_text, to_text) = (text(value, "from")?, text(value, "to")?);
    let from = Timestamp::parse(from_text)?;
    let to = Timestamp::parse(to_text)?;
    let (first_seq, end_seq) = (number(value, "first_seq")?, number(value, "end_seq")?);
    if first_seq > end_seq || end_seq > head.size {
        return Err(format!(
            "the window [{first_seq}, {end_seq}) does not fit in the tree head of size {}",
            head.size
        ));
    }
    let frontier = Frontier::from_parts(first_seq, hashes(value, "frontier")?)
        .ok_or("`frontier` must hold one hash per set bit of `first_seq`")?;
    Ok(Header {
        origin,
        from,
        to,
        from_text: from_text.to_owned(),
        to_text: to_text.to_owned(),
        first_seq,
        end_seq,
        tree_size: head.size,
        root: head.root,
        frontier,
        consistency: hashes(value, "consistency")?,
    })
}

/// The line's entry, checked canonical and stating `seq`, with its leaf hash.
fn parse_entry(value: &Value, seq: u64) -> Result<(Entry, Hash), String> {
    let bytes = value["entry"].as_str().ok_or("`entry` must be a string")?;
    let entry = Entry::from_canonical_bytes(bytes.as_bytes())
        .map_err(|error| format!("entry {seq} is not a canonical entry: {error}"))?;
    if entry.seq != seq {
        return Err(format!(
            "the line says seq {seq} but its entry says {}",
            entry.seq
        ));
    }
    Ok((entry, merkle::leaf_hash(bytes.as_bytes())))
}

fn check_context(value: &Value, header: &Header) -> Result<String, String> {
    let seq = number(value, "seq")?;
    let role = text(value, "role")?.to_owned();
    let (entry, leaf) = parse_entry(value, seq)?;
    merkle::verify_inclusion(
        seq,
        header.tree_size,
        &leaf,
        &hashes(value, "inclusion")?,
        &header.root,
    )
    .map_err(|error| format!("context entry {seq} is not in the signed tree: {error}"))?;
    match role.as_str() {
        "before" if seq + 1 != header.first_seq || entry.time >= header.from => Err(format!(
            "the `before` entry must be entry {} and earlier than the window",
            header.first_seq.wrapping_sub(1)
        )),
        "after" if seq != header.end_seq || entry.time < header.to => Err(format!(
            "the `after` entry must be entry {} and not earlier than the window's end",
            header.end_seq
        )),
        "before" | "after" | "rotation" | "deployment" | "checkpoint"
            if (header.first_seq..header.end_seq).contains(&seq) =>
        {
            Err(format!("context entry {seq} lies inside the window"))
        }
        "before" | "after" | "rotation" | "deployment" | "checkpoint" => Ok(role),
        other => Err(format!("unknown context role `{other}`")),
    }
}

fn check_entry(
    value: &Value,
    expected: u64,
    header: &Header,
    last_time: Option<Timestamp>,
) -> Result<(Entry, Hash), String> {
    let seq = number(value, "seq")?;
    if seq != expected {
        return Err(format!("expected entry {expected}, found entry {seq}"));
    }
    if seq >= header.end_seq {
        return Err(format!(
            "entry {seq} is past the window's end_seq {}",
            header.end_seq
        ));
    }
    let (entry, leaf) = parse_entry(value, seq)?;
    if entry.time < header.from || entry.time >= header.to {
        return Err(format!(
            "entry {seq} at {} is outside the window",
            entry.time
        ));
    }
    if last_time.is_some_and(|last| entry.time < last) {
        return Err(format!("entry {seq} is earlier than the entry before it"));
    }
    Ok((entry, leaf))
}

fn check_end(
    value: &Value,
    header: &Header,
    frontier: &Frontier,
    entries: u64,
    context: u64,
    saw_before: bool,
    saw_after: bool,
) -> Result<(), String> {
    if header.first_seq + entries != header.end_seq {
        return Err(format!(
            "the window holds entries [{}, {}) but only {entries} were read",
            header.first_seq, header.end_seq
        ));
    }
    if header.first_seq > 0 && !saw_before {
        return Err("the `before` context line is missing: the window's start is unproved".into());
    }
    if header.end_seq < header.tree_size && !saw_after {
        return Err("the `after` context line is missing: the window's end is unproved".into());
    }
    if number(value, "entries")? != entries || number(value, "context")? != context {
        return Err(format!(
            "`end` counts do not match the {entries} entry and {context} context lines read"
        ));
    }
    merkle::verify_consistency(
        header.end_seq,
        header.tree_size,
        &frontier.root(),
        &header.root,
        &header.consistency,
    )
    .map_err(|error| format!("the window's entries do not lead to the signed tree head: {error}"))
}
