//! The SQLite store: one file, nothing to install, durable on every commit.
//!
//! The file runs in WAL mode with `synchronous = FULL`, so a committed batch survives a
//! crash or power loss. Writers take the database's write lock with `BEGIN IMMEDIATE`, which
//! also serialises several processes sharing one file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use crate::sql::{ledger_tables, sqlite_placeholders, Backend, SqlValue, Tx, APPEND_ONLY_TABLES};
use crate::StoreError;

/// How long a connection waits for another connection's lock before failing, unless it was
/// opened with [`SqliteBackend::open_with_lock_timeout`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A ledger in one SQLite file.
pub struct SqliteBackend {
    path: PathBuf,
    connection: Connection,
}

impl SqliteBackend {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<SqliteBackend, StoreError> {
        SqliteBackend::open_with_lock_timeout(path, BUSY_TIMEOUT)
    }

    /// [`SqliteBackend::open`] with the busy timeout set to `lock_timeout`: a transaction
    /// that waits longer than this for a lock another connection holds (another process in
    /// `BEGIN IMMEDIATE`) fails with `database is locked` instead of waiting on.
    pub fn open_with_lock_timeout(
        path: &Path,
        lock_timeout: Duration,
    ) -> Result<SqliteBackend, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(lock_timeout)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        Ok(SqliteBackend {
            path: path.to_owned(),
            connection,
        })
    }

    /// The raw connection, for tests that play an attacker with file access.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.connection
    }
}

impl Backend for SqliteBackend {
    fn write(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        work(&mut transaction)?;
        transaction.commit()?;
        Ok(())
    }

    fn read(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        work(&mut transaction)?;
        transaction.rollback()?;
        Ok(())
    }

    fn create_schema(&mut self) -> Result<(), StoreError> {
        let mut batch = ledger_tables("INTEGER", "BLOB");
        for table in APPEND_ONLY_TABLES {
            for operation in ["UPDATE", "DELETE"] {
                batch.push_str(&format!(
                    "CREATE TRIGGER IF NOT EXISTS {table}_refuse_{op} BEFORE {operation} ON \
                     {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} \
                     refused'); END;\n",
                    op = operation.to_lowercase()
                ));
            }
        }
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute_batch(&batch)?;
        transaction.commit()?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

impl Tx for rusqlite::Transaction<'_> {
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let mut statement = self.prepare_cached(&sqlite_placeholders(sql))?;
        let changed = statement.execute(rusqlite::params_from_iter(params))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        let mut statement = self.prepare_cached(&sqlite_placeholders(sql))?;
        let n_columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        let mut result = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..n_columns)
                .map(|index| row.get_ref(index).map(sql_value_of))
                .collect::<Result<Vec<_>, _>>()?;
            result.push(values);
        }
        Ok(result)
    }
}

fn sql_value_of(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(integer) => SqlValue::Integer(integer),
        // The ledger schema has no floating-point columns; keep the text so it can be shown.
        ValueRef::Real(real) => SqlValue::Text(real.to_string()),
        ValueRef::Text(text) => SqlValue::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => SqlValue::Blob(bytes.to_vec()),
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Integer(integer) => ToSqlOutput::Borrowed(ValueRef::Integer(*integer)),
            SqlValue::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            SqlValue::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}
