//! The transactional surface SQLite and PostgreSQL share, so ledger logic is written once.
//!
//! SQL given to [`Tx`] uses `$1`, `$2`, ... placeholders and the column types `BIGINT`,
//! `TEXT` and a binary type, read back as [`SqlValue`].

use crate::StoreError;

/// One SQL parameter or result column.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (`BIGINT`).
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes (`BLOB` in SQLite, `BYTEA` in PostgreSQL).
    Blob(Vec<u8>),
}

impl SqlValue {
    /// Reads the value as an integer.
    pub fn integer(&self, column: &str) -> Result<i64, StoreError> {
        match self {
            SqlValue::Integer(value) => Ok(*value),
            other => Err(column_error(column, other, "an integer")),
        }
    }

    /// Reads the value as a non-negative integer, such as a `seq` or a size.
    pub fn count(&self, column: &str) -> Result<u64, StoreError> {
        u64::try_from(self.integer(column)?)
            .map_err(|_| column_error(column, self, "a non-negative integer"))
    }

    /// Reads the value as text.
    pub fn text(&self, column: &str) -> Result<&str, StoreError> {
        match self {
            SqlValue::Text(value) => Ok(value),
            other => Err(column_error(column, other, "text")),
        }
    }

    /// Reads the value as bytes.
    pub fn blob(&self, column: &str) -> Result<&[u8], StoreError> {
        match self {
            SqlValue::Blob(value) => Ok(value),
            other => Err(column_error(column, other, "bytes")),
        }
    }

    /// Reads the value as a 32-byte hash.
    pub fn hash(&self, column: &str) -> Result<ascribe_ledger::Hash, StoreError> {
        let bytes = self.blob(column)?;
        ascribe_ledger::Hash::try_from(bytes)
            .map_err(|_| column_error(column, self, "a 32-byte hash"))
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> SqlValue {
        SqlValue::Integer(value)
    }
}

impl From<u64> for SqlValue {
    fn from(value: u64) -> SqlValue {
        // Sizes and seqs are bounded by 2^53 by the entry format, far below i64::MAX.
        SqlValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> SqlValue {
        SqlValue::Text(value.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> SqlValue {
        SqlValue::Text(value)
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(value: Vec<u8>) -> SqlValue {
        SqlValue::Blob(value)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> SqlValue {
        value.map_or(SqlValue::Null, Into::into)
    }
}

fn column_error(column: &str, value: &SqlValue, wanted: &str) -> StoreError {
    StoreError::Column {
        column: column.to_owned(),
        problem: format!("wanted {wanted}, got {value:?}"),
    }
}

/// One open transaction.
pub trait Tx {
    /// Runs a statement and returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError>;

    /// Runs a query and returns all its rows.
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StoreError>;

    /// Runs a query expected to return at most one row.
    fn query_row(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Option<Vec<SqlValue>>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// A database that holds a ledger.
pub trait Backend: Send {
    /// Runs `work` in one transaction that holds the ledger's write lock, so that only one
    /// writer, in this or any other process, appends at a time. Commits when `work` returns
    /// `Ok` and the commit is durable on return; rolls back otherwise.
    fn write(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Runs `work` in a read-only transaction that sees one consistent snapshot.
    fn read(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Creates the ledger tables and their append-only guards if they do not exist.
    fn create_schema(&mut self) -> Result<(), StoreError>;

    /// Where the database is, for messages (never includes a password).
    fn describe(&self) -> String;
}

/// The tables that carry the record, and the subtree tiles: UPDATE and DELETE (and on
/// PostgreSQL, TRUNCATE) on them are refused by triggers.
pub(crate) const APPEND_ONLY_TABLES: [&str; 4] = [
    "ledger_entries",
    "ledger_tree_heads",
    "ledger_meta",
    "ledger_subtrees",
];

/// The ledger's tables, given the database's names for a 64-bit key column (SQLite needs
/// `INTEGER` for a row-id key) and for bytes.
pub(crate) fn ledger_tables(key: &str, bytes: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS ledger_entries (
    seq {key} PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    entry TEXT NOT NULL,
    leaf_hash {bytes} NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_entries_time ON ledger_entries (time);
CREATE INDEX IF NOT EXISTS ledger_entries_kind_time ON ledger_entries (kind, time);
CREATE TABLE IF NOT EXISTS ledger_tree_heads (
    tree_size {key} PRIMARY KEY,
    root {bytes} NOT NULL,
    signed_at TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_subtrees (
    level BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    hash {bytes} NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS ledger_frontier (
    id {key} PRIMARY KEY CHECK (id = 1),
    tree_size BIGINT NOT NULL,
    nodes {bytes} NOT NULL,
    last_time TEXT
);
"
    )
}

/// Rewrites `$1`-style placeholders to SQLite's `?1` form.
pub(crate) fn sqlite_placeholders(sql: &str) -> String {
    let mut rewritten = String::with_capacity(sql.len());
    let mut characters = sql.chars().peekable();
    while let Some(character) = characters.next() {
        let is_placeholder =
            character == '$' && characters.peek().is_some_and(char::is_ascii_digit);
        rewritten.push(if is_placeholder { '?' } else { character });
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_for_sqlite() {
        assert_eq!(
            sqlite_placeholders("SELECT $1, $12 FROM t WHERE a = '$x'"),
            "SELECT ?1, ?12 FROM t WHERE a = '$x'"
        );
    }
}
