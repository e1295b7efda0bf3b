//! The PostgreSQL store: one ledger shared by many gateway processes.
//!
//! Each write transaction first takes a transaction-scoped advisory lock keyed by the
//! ledger's schema, so appends from any number of processes are serialised without blocking
//! readers; the [`crate::Ledger`] then catches up with rows other processes wrote before
//! assigning the next `seq`. Commits wait for the server's WAL flush (the default
//! `synchronous_commit = on`).

use std::collections::HashMap;
use std::error::Error;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, Config, IsolationLevel, NoTls, Statement};

use crate::sql::{ledger_tables, Backend, SqlValue, Tx, APPEND_ONLY_TABLES};
use crate::StoreError;

const WRITE_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext('ascribe.ledger.' || current_schema()))";

const REFUSE_CHANGE_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION ascribe_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
"#;

/// A ledger in a PostgreSQL database (in the connection's current schema).
///
/// A connection the server closed (a restart, a failover, an idle timeout) is replaced by a
/// new one: a transaction that finds it closed as it begins begins again on a new
/// connection; one that met the closure after it began fails and nothing of it was written.
pub struct PostgresBackend {
    client: Client,
    config: Config,
    description: String,
    statements: HashMap<String, Statement>,
}

impl PostgresBackend {
    /// Connects to the server named by a `postgres://` URL.
    pub fn connect(url: &str) -> Result<PostgresBackend, StoreError> {
        let config: Config = url.parse()?;
        PostgresBackend::connect_with(config)
    }

    /// [`PostgresBackend::connect`] with the session's `lock_timeout` set to `lock_timeout`
    /// (rounded up to whole milliseconds), on this connection and on every one that replaces
    /// it: a statement that waits longer than this for a lock (the ledger's write lock, or a
    /// table another session locked) fails instead of waiting on.
    pub fn connect_with_lock_timeout(
        url: &str,
        lock_timeout: Duration,
    ) -> Result<PostgresBackend, StoreError> {
        let mut config: Config = url.parse()?;
        let millis = lock_timeout.as_nanos().div_ceil(1_000_000).max(1);
        let setting = format!("-c lock_timeout={millis}");
        let options = match config.get_options() {
            Some(options) if !options.trim().is_empty() => format!("{options} {setting}"),
            _ => setting,
        };
        config.options(&options);
        PostgresBackend::connect_with(config)
    }

    fn connect_with(mut config: Config) -> Result<PostgresBackend, StoreError> {
        with_network_timeouts(&mut config);
        let description = describe(&config);
        let client = config.connect(NoTls)?;
        Ok(PostgresBackend {
            client,
            config,
            description,
            statements: HashMap::new(),
        })
    }

    /// Reconnects when the server closed the connection; prepared statements belong to the
    /// old connection, so they are forgotten.
    fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if !self.client.is_closed() {
            return Ok(());
        }
        tracing::warn!(database = %self.description, "connection closed; reconnecting");
        self.client = self.config.connect(NoTls)?;
        self.statements.clear();
        Ok(())
    }

    /// After a transaction failed to begin: when the server had closed the connection while
    /// it sat idle (a restart, a failover, an idle timeout), nothing of the transaction was
    /// sent, so a new connection is opened for it to begin again, once; any other failure is
    /// returned as it is.
    fn reconnect_after(&mut self, error: postgres::Error) -> Result<(), StoreError> {
        if !self.client.is_closed() {
            return Err(error.into());
        }
        self.ensure_connected()
    }

    /// The raw client, for tests that play an attacker with database access.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Runs `work` in a write transaction that holds the ledger's write lock, and commits.
fn write_in(
    mut transaction: postgres::Transaction<'_>,
    statements: &mut HashMap<String, Statement>,
    work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    transaction.execute(WRITE_LOCK, &[])?;
    let mut tx = PostgresTx {
        transaction,
        statements,
    };
    work(&mut tx)?;
    tx.transaction.commit()?;
    Ok(())
}

/// Begins a read-only transaction that sees one snapshot.
fn begin_read(client: &mut Client) -> Result<postgres::Transaction<'_>, postgres::Error> {
    client
        .build_transaction()
        .read_only(true)
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
}

/// Runs `work` in a read transaction, then rolls it back.
fn read_in(
    transaction: postgres::Transaction<'_>,
    statements: &mut HashMap<String, Statement>,
    work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut tx = PostgresTx {
        transaction,
        statements,
    };
    work(&mut tx)?;
    tx.transaction.rollback()?;
    Ok(())
}

/// How long one connection attempt may take, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long data sent to the server may stay unacknowledged before the connection is given
/// up (TCP_USER_TIMEOUT), unless the URL sets `tcp_user_timeout`.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds the waits on a network that drops packets instead of refusing them: without these
/// a connection attempt, or a write in flight, would wait as long as the kernel retries.
// LIMITATION: not exercised against a network that drops packets (the tests stop servers,
// which refuse connections); the settings are the kernel's and the client's own.
fn with_network_timeouts(config: &mut Config) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
}

/// `postgres://user@host:port/db`, without the password.
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let database = config.get_dbname().unwrap_or("");
    format!("postgres://{user}@{host}:{port}/{database}")
}

impl Backend for PostgresBackend {
    fn write(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.ensure_connected()?;
        let error = match self.client.transaction() {
            Ok(transaction) => return write_in(transaction, &mut self.statements, work),
            Err(error) => error,
        };
        self.reconnect_after(error)?;
        let transaction = self.client.transaction()?;
        write_in(transaction, &mut self.statements, work)
    }

    fn read(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.ensure_connected()?;
        let error = match begin_read(&mut self.client) {
            Ok(transaction) => return read_in(transaction, &mut self.statements, work),
            Err(error) => error,
        };
        self.reconnect_after(error)?;
        let transaction = begin_read(&mut self.client)?;
        read_in(transaction, &mut self.statements, work)
    }

    fn create_schema(&mut self) -> Result<(), StoreError> {
        let mut batch = ledger_tables("BIGINT", "BYTEA") + REFUSE_CHANGE_FUNCTION;
        for table in APPEND_ONLY_TABLES {
            batch.push_str(&format!(
                "CREATE OR REPLACE TRIGGER {table}_refuse_change BEFORE UPDATE OR DELETE ON \
                 {table} FOR EACH ROW EXECUTE FUNCTION ascribe_refuse_change();\n\
                 CREATE OR REPLACE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION ascribe_refuse_change();\n"
            ));
        }
        let mut transaction = self.client.transaction()?;
        transaction.execute(WRITE_LOCK, &[])?;
        transaction.batch_execute(&batch)?;
        transaction.commit()?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// A transaction with the connection's prepared-statement cache beside it.
struct PostgresTx<'a> {
    transaction: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PostgresTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.transaction.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn parameters(params: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

impl Tx for PostgresTx<'_> {
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        Ok(self.transaction.execute(&statement, &parameters(params))?)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        let statement = self.statement(sql)?;
        let rows = self.transaction.query(&statement, &parameters(params))?;
        rows.iter()
            .map(|row| (0..row.len()).map(|index| row.try_get(index)).collect())
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }
}

type BoxedError = Box<dyn Error + Sync + Send>;

impl ToSql for SqlValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxedError> {
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Integer(value) if *ty == Type::INT4 => i32::try_from(*value)?.to_sql(ty, out),
            SqlValue::Integer(value) if *ty == Type::INT2 => i16::try_from(*value)?.to_sql(ty, out),
            SqlValue::Integer(value) => value.to_sql(ty, out),
            SqlValue::Text(text) => text.as_str().to_sql(ty, out),
            SqlValue::Blob(bytes) => bytes.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for SqlValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<SqlValue, BoxedError> {
        Ok(match *ty {
            Type::INT8 => SqlValue::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => SqlValue::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => SqlValue::Integer(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => SqlValue::Integer(bool::from_sql(ty, raw)?.into()),
            Type::BYTEA => SqlValue::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            _ => SqlValue::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<SqlValue, BoxedError> {
        Ok(SqlValue::Null)
    }

    fn accepts(ty: &Type) -> bool {
        [Type::INT8, Type::INT4, Type::INT2, Type::BOOL, Type::BYTEA].contains(ty)
            || <String as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections get bounded network waits, and a URL's own values win.
    #[test]
    fn network_timeouts_default_and_yield_to_the_url() {
        let mut config: Config = "postgres://ledger@db.example/ascribe".parse().expect("url");
        with_network_timeouts(&mut config);
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));

        // The Rust client reads `tcp_user_timeout` in seconds (libpq reads milliseconds).
        let url = "postgres://ledger@db.example/ascribe?connect_timeout=3&tcp_user_timeout=4";
        let mut config: Config = url.parse().expect("url");
        with_network_timeouts(&mut config);
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(4)));
    }

    /// The lock timeout joins the options the URL already sets, and survives a reconnect.
    #[test]
    fn lock_timeout_joins_the_url_options_on_every_connection() {
        let server = std::env::var("ASCRIBE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20application_name%3Dlock_timeout_test");
        let timeout = Duration::from_micros(1_500_001);
        let mut backend = PostgresBackend::connect_with_lock_timeout(&url, timeout)
            .unwrap_or_else(|error| panic!("PostgreSQL is required at {server}: {error}"));
        let show = |backend: &mut PostgresBackend| {
            let row = backend
                .client()
                .query_one(
                    "SELECT current_setting('lock_timeout'), application_name \
                            FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                    &[],
                )
                .expect("settings");
            (row.get::<_, String>(0), row.get::<_, String>(1))
        };
        let expected = ("1501ms".to_owned(), "lock_timeout_test".to_owned());
        assert_eq!(show(&mut backend), expected);
        backend.client = backend.config.connect(NoTls).expect("reconnects");
        assert_eq!(
            show(&mut backend),
            expected,
            "a new connection has the same settings"
        );
    }
}
