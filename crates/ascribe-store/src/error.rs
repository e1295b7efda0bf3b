//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite database refused or failed an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server refused or failed an operation, or could not be reached.
    #[error("postgres: {}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A file next to the database (key, directory) could not be read or written.
    #[error("{path}: {cause}")]
    File {
        /// The path involved.
        path: String,
        /// The operating system's error (kept out of the error chain, which would print it
        /// twice).
        cause: std::io::Error,
    },
    /// The `--db` value is not a database location Ascribe understands.
    #[error("unsupported database location `{0}`; use sqlite://PATH or postgres://...")]
    Location(String),
    /// The database exists but holds no ledger.
    #[error("no ledger in {0}; run `ascribe init` first")]
    NotInitialised(String),
    /// What is stored contradicts itself; `ascribe verify` will say where.
    #[error("ledger is inconsistent: {0}; run `ascribe verify` to find the first bad entry")]
    Inconsistent(String),
    /// A value read back did not have the expected type.
    #[error("unexpected value in column {column}: {problem}")]
    Column {
        /// The column or expression read.
        column: String,
        /// What was wrong with it.
        problem: String,
    },
    /// An entry or key was refused by the ledger format.
    #[error(transparent)]
    Entry(#[from] ascribe_ledger::EntryError),
    /// A signing key could not be parsed.
    #[error(transparent)]
    Key(#[from] ascribe_ledger::KeyError),
    /// A proof could not be produced.
    #[error(transparent)]
    Proof(#[from] ascribe_ledger::ProofError),
    /// A proof was asked against a tree larger than the ledger.
    #[error(
        "tree size {size} is larger than the ledger, which holds {entries} entries; \
         ask for a size up to {entries}"
    )]
    TreeBeyondLedger {
        /// The tree size asked for.
        size: u64,
        /// How many entries the ledger holds.
        entries: u64,
    },
}

/// The client error with its cause: `postgres::Error` alone prints only its kind (such as
/// `db error`), leaving out the server's message (such as which table refused an UPDATE).
fn postgres_message(error: &postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

impl StoreError {
    pub(crate) fn file(path: &std::path::Path, source: std::io::Error) -> StoreError {
        StoreError::File {
            path: path.display().to_string(),
            cause: source,
        }
    }
}
