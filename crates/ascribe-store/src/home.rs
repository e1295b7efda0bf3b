//! Where a ledger lives: the database location and the signing key files beside it.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ascribe_ledger::{NoteSigner, NoteVerifier};

use crate::sql::Backend;
use crate::{PostgresBackend, SqliteBackend, StoreError};

/// A database named by `--db` or `ASCRIBE_DB`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// `sqlite://PATH` (or `sqlite:PATH`): one file.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`: a server.
    Postgres(String),
}

impl FromStr for DatabaseLocation {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<DatabaseLocation, StoreError> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(text.to_owned()));
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"));
        match path {
            Some(path) if !path.is_empty() => Ok(DatabaseLocation::Sqlite(PathBuf::from(path))),
            _ => Err(StoreError::Location(text.to_owned())),
        }
    }
}

/// Opens the database; `create` allows a new SQLite file (only `ascribe init` sets it).
pub fn open_backend(
    location: &DatabaseLocation,
    create: bool,
) -> Result<Box<dyn Backend>, StoreError> {
    open(location, create, None)
}

/// Opens an existing ledger's database for a writer that must not wait long on a lock held
/// elsewhere: SQLite's busy timeout, or PostgreSQL's `lock_timeout`, is `lock_timeout`, so
/// a write transaction that cannot get its locks within it fails (and nothing of it is
/// written) instead of waiting until the holder lets go.
pub fn open_backend_with_lock_timeout(
    location: &DatabaseLocation,
    lock_timeout: Duration,
) -> Result<Box<dyn Backend>, StoreError> {
    open(location, false, Some(lock_timeout))
}

fn open(
    location: &DatabaseLocation,
    create: bool,
    lock_timeout: Option<Duration>,
) -> Result<Box<dyn Backend>, StoreError> {
    match location {
        DatabaseLocation::Sqlite(path) => {
            if !create && !path.exists() {
                return Err(StoreError::NotInitialised(format!(
                    "sqlite://{}",
                    path.display()
                )));
            }
            if let Some(parent) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                fs::create_dir_all(parent).map_err(|error| StoreError::file(parent, error))?;
            }
            Ok(Box::new(match lock_timeout {
                Some(timeout) => SqliteBackend::open_with_lock_timeout(path, timeout)?,
                None => SqliteBackend::open(path)?,
            }))
        }
        DatabaseLocation::Postgres(url) => Ok(Box::new(match lock_timeout {
            Some(timeout) => PostgresBackend::connect_with_lock_timeout(url, timeout)?,
            None => PostgresBackend::connect(url)?,
        })),
    }
}

/// The ledger's key pair on disk: `ledger.key` (mode 0600) and `ledger.pub`.
#[derive(Clone, Debug)]
pub struct SigningKeyFiles {
    /// The private key file, readable by its owner only.
    pub private_key: PathBuf,
    /// The public key file, safe to publish.
    pub public_key: PathBuf,
}

impl SigningKeyFiles {
    /// The key files inside `directory`.
    pub fn in_directory(directory: &Path) -> SigningKeyFiles {
        SigningKeyFiles {
            private_key: directory.join("ledger.key"),
            public_key: directory.join("ledger.pub"),
        }
    }

    /// Makes a new key pair named `origin` and writes both files; refuses to overwrite.
    pub fn create(&self, origin: &str) -> Result<NoteSigner, StoreError> {
        let signer = NoteSigner::generate(origin)?;
        if let Some(parent) = self.private_key.parent() {
            fs::create_dir_all(parent).map_err(|error| StoreError::file(parent, error))?;
        }
        write_new(&self.private_key, &signer.private_key_text(), 0o600)?;
        write_new(
            &self.public_key,
            &signer.verifier().public_key_text(),
            0o644,
        )?;
        Ok(signer)
    }

    /// Reads the private key.
    pub fn load_signer(&self) -> Result<NoteSigner, StoreError> {
        let text = read(&self.private_key)?;
        Ok(NoteSigner::from_private_key(&text)?)
    }

    /// Reads the public key.
    pub fn load_verifier(&self) -> Result<NoteVerifier, StoreError> {
        let text = read(&self.public_key)?;
        Ok(NoteVerifier::from_public_key(&text)?)
    }
}

fn read(path: &Path) -> Result<String, StoreError> {
    fs::read_to_string(path).map_err(|error| StoreError::file(path, error))
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|error| StoreError::file(path, error))?;
    file.write_all(format!("{text}\n").as_bytes())
        .map_err(|error| StoreError::file(path, error))?;
    file.sync_all()
        .map_err(|error| StoreError::file(path, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let sqlite: DatabaseLocation = "sqlite://data/ledger.db".parse().expect("sqlite");
        assert_eq!(sqlite, DatabaseLocation::Sqlite("data/ledger.db".into()));
        let short: DatabaseLocation = "sqlite:/tmp/l.db".parse().expect("sqlite");
        assert_eq!(short, DatabaseLocation::Sqlite("/tmp/l.db".into()));
        let postgres: DatabaseLocation = "postgres://u@h/db".parse().expect("postgres");
        assert_eq!(
            postgres,
            DatabaseLocation::Postgres("postgres://u@h/db".into())
        );
        assert!("mysql://x".parse::<DatabaseLocation>().is_err());
        assert!("sqlite://".parse::<DatabaseLocation>().is_err());
    }

    #[test]
    fn private_key_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let directory = tempfile::tempdir().expect("tempdir");
        let files = SigningKeyFiles::in_directory(directory.path());
        let signer = files.create("ascribe.test/ledger").expect("created");
        let mode = fs::metadata(&files.private_key)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(files.load_verifier().expect("loads"), signer.verifier());
        assert!(
            files.create("ascribe.test/ledger").is_err(),
            "must not overwrite a key"
        );
    }
}
