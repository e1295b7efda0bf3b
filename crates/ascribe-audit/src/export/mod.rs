//! Evidence packages for a window of time, written as they are read.
//!
//! Each format reads the window in pages of [`PAGE`] rows by `seq`, so an export of a day of
//! traffic holds one page in memory, never the day. The formats are described for readers
//! outside this code base in `docs/export.md`.

mod csv;
mod jsonl;
mod report;

use std::io::Write;
use std::str::FromStr;

use ascribe_store::Backend;
use serde::Serialize;

use crate::{AuditError, Window};

pub use self::csv::write_csv;
pub use jsonl::{write_jsonl, PACKAGE_FORMAT};
pub use report::{write_html, MAX_REPORT_DECISIONS};

/// Rows read per query while exporting.
pub const PAGE: u32 = 1000;

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Entries with proofs and the signed tree head: verifiable offline.
    Jsonl,
    /// One row per inference, for spreadsheets.
    Csv,
    /// One self-contained page for people.
    Html,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown export format `{other}`; use jsonl, csv or html"
            )),
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Entries (JSONL), inference rows (CSV) or decision rows (HTML) written.
    pub rows: u64,
    /// Context entries written (JSONL).
    pub context: u64,
    /// The size of the signed tree head the package is proved against (JSONL).
    pub tree_size: Option<u64>,
    /// Entries of the window left out because no signed tree head covers them yet (JSONL).
    pub not_yet_signed: u64,
}

/// Writes the export of `window` in `format` to `out`.
pub fn export(
    backend: &mut dyn Backend,
    window: Window,
    format: Format,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    match format {
        Format::Jsonl => write_jsonl(backend, window, out),
        Format::Csv => write_csv(backend, window, out),
        Format::Html => write_html(backend, window, out),
    }
}
