//! What can go wrong while answering.

use ascribe_store::StoreError;

/// Why an audit question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The thing asked about is not in this ledger; the message says what and where to look.
    #[error("{0}")]
    NotFound(String),
    /// The question itself is wrong (a window that ends before it starts, a bad time).
    #[error("{0}")]
    Invalid(String),
    /// Writing an export failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

impl From<csv::Error> for AuditError {
    fn from(error: csv::Error) -> AuditError {
        AuditError::Io(std::io::Error::other(error))
    }
}

impl From<serde_json::Error> for AuditError {
    fn from(error: serde_json::Error) -> AuditError {
        AuditError::Io(std::io::Error::other(error))
    }
}
