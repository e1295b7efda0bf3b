//! Time windows, and the `seq` range each one covers.

use ascribe_ledger::Timestamp;
use ascribe_store::{StoreError, Tx};
use serde::Serialize;

use crate::AuditError;

/// A half-open window of time `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The first instant inside the window.
    pub from: Timestamp,
    /// The first instant after it.
    pub to: Timestamp,
}

impl Window {
    /// The window `[from, to)`; refused when it is empty.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Window, AuditError> {
        if to <= from {
            return Err(AuditError::Invalid(format!(
                "the window must end after it starts: its end ({to}) is not after its start \
                 ({from})"
            )));
        }
        Ok(Window { from, to })
    }

    /// The window between two RFC 3339 times.
    pub fn parse(from: &str, to: &str) -> Result<Window, AuditError> {
        Window::new(parse_time(from)?, parse_time(to)?)
    }

    /// Whether `instant` is inside the window.
    pub fn contains(&self, instant: Timestamp) -> bool {
        self.from <= instant && instant < self.to
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut window = serializer.serialize_struct("Window", 2)?;
        window.serialize_field("from", &self.from.to_string())?;
        window.serialize_field("to", &self.to.to_string())?;
        window.end()
    }
}

/// Parses an RFC 3339 time in any offset, to microseconds.
pub fn parse_time(text: &str) -> Result<Timestamp, AuditError> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text).map_err(|error| {
        AuditError::Invalid(format!(
            "`{text}` is not an RFC 3339 time such as 2026-03-01T09:00:00Z: {error}"
        ))
    })?;
    Ok(Timestamp::from_datetime(parsed.with_timezone(&chrono::Utc)))
}

/// The entries whose `time` is inside `window` are exactly `seq` in the returned `[start,
/// end)`: two lookups on the `time` index, because `time` never decreases along `seq`.
pub(crate) fn seq_range(tx: &mut dyn Tx, window: &Window) -> Result<(u64, u64), StoreError> {
    let start = first_seq_at_or_after(tx, window.from)?;
    let end = first_seq_at_or_after(tx, window.to)?;
    Ok((start, end.max(start)))
}

fn first_seq_at_or_after(tx: &mut dyn Tx, instant: Timestamp) -> Result<u64, StoreError> {
    let sql = "SELECT seq FROM ledger_entries WHERE time >= $1 ORDER BY time, seq LIMIT 1";
    if let Some(row) = tx.query_row(sql, &[instant.to_string().into()])? {
        return row[0].count("seq");
    }
    let last = "SELECT seq FROM ledger_entries ORDER BY seq DESC LIMIT 1";
    match tx.query_row(last, &[])? {
        Some(row) => Ok(row[0].count("seq")? + 1),
        None => Ok(0),
    }
}
