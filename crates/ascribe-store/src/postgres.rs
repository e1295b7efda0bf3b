//! The PostgreSQL store: one ledger shared by many gateway processes.
//!
//! Each write transaction first takes a transaction-scoped advisory lock keyed by the
//! ledger's schema, so appends from any number of processes are serialised without blocking
//! readers; the [`crate::Ledger`] then catches up with rows other processes wrote before
//! assigning the next `seq`. Commits wait for the server's WAL flush (the default
//! `synchronous_commit = on`).

use std::collections::HashMap;
use std::error::Error;

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
/// new one at the next transaction; the transaction that met the closed connection fails
/// and nothing of it was written.
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

    /// The raw client, for tests that play an attacker with database access.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
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
        let mut transaction = self.client.transaction()?;
        transaction.execute(WRITE_LOCK, &[])?;
        let mut tx = PostgresTx {
            transaction,
            statements: &mut self.statements,
        };
        work(&mut tx)?;
        tx.transaction.commit()?;
        Ok(())
    }

    fn read(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.ensure_connected()?;
        let transaction = self
            .client
            .build_transaction()
            .read_only(true)
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()?;
        let mut tx = PostgresTx {
            transaction,
            statements: &mut self.statements,
        };
        work(&mut tx)?;
        tx.transaction.rollback()?;
        Ok(())
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
