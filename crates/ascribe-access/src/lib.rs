//! Who may talk to Ascribe: named keys with one role each.
//!
//! A key is a random bearer token shown once when it is made; only its SHA-256 is kept. Keys
//! are created and revoked by ledger entries (`key.created`, `key.revoked`), and the
//! `access_keys` table is their projection, written in the same transaction, so the ledger
//! alone can rebuild who could do what and when.
//!
//! Roles: a *caller* may run inferences, an *admin* may change the registry, an *auditor* may
//! read the audit surface and the ledger. This crate never sees a token after it is hashed,
//! and neither token nor hash is ever logged.

#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

use ascribe_ledger::Entry;
use ascribe_store::query::read;
use ascribe_store::{Backend, PendingEntry, Projection, Rejection, SqlValue, StoreError, Tx};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64_URL;
use base64::Engine as _;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Entry kind of a new key.
pub const KEY_CREATED: &str = "key.created";
/// Entry kind of a revoked key.
pub const KEY_REVOKED: &str = "key.revoked";

/// Prefix of every token, so a leaked one is recognisable in a secret scanner.
const TOKEN_PREFIX: &str = "asc_";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS access_keys (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_seq BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_seq BIGINT,
    revoked_at TEXT
)";

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs inferences through the gateway.
    Caller,
    /// Changes the registry.
    Admin,
    /// Reads audit answers and the ledger.
    Auditor,
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.pad(match self {
            Role::Caller => "caller",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        })
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "caller" => Ok(Role::Caller),
            "admin" => Ok(Role::Admin),
            "auditor" => Ok(Role::Auditor),
            other => Err(format!(
                "unknown role `{other}`; use caller, admin or auditor"
            )),
        }
    }
}

/// A key as the projection holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// The key's name, recorded as the actor of what it does.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The `seq` of its `key.created` entry.
    pub created_seq: u64,
    /// When it was created.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// The `seq` of its `key.revoked` entry, if revoked.
    pub revoked_seq: Option<u64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// A freshly made token and its hash; the token is shown once and never stored.
pub struct NewToken {
    /// The bearer token to hand to the key's holder.
    pub token: String,
    /// Its SHA-256, lowercase hex: what the ledger and the table keep.
    pub token_sha256: String,
}

/// Makes a new random token.
pub fn new_token() -> Result<NewToken, StoreError> {
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|error| {
        StoreError::Inconsistent(format!("no randomness available to make a key: {error}"))
    })?;
    let token = format!("{TOKEN_PREFIX}{}", BASE64_URL.encode(secret));
    let token_sha256 = token_hash(&token);
    Ok(NewToken {
        token,
        token_sha256,
    })
}

/// The SHA-256 of a token, lowercase hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates the `access_keys` table if it does not exist.
pub fn create_tables(backend: &mut dyn Backend) -> Result<(), StoreError> {
    backend.write(&mut |tx| tx.execute(SCHEMA, &[]).map(|_| ()))
}

/// The entry that creates key `name`; refused if an unrevoked key has that name.
pub fn create_key(name: &str, role: Role, token_sha256: &str, actor: &str) -> PendingEntry {
    let body = json!({"name": name, "role": role.to_string(), "token_sha256": token_sha256});
    let name = name.to_owned();
    PendingEntry::checked(KEY_CREATED, actor, move |tx| {
        validate_name(&name)?;
        if find(tx, &name)?.is_some() {
            return Err(Rejection::Refused(format!(
                "a key named `{name}` already exists; key names are never reused"
            )));
        }
        Ok(body.clone())
    })
}

/// The entry that revokes key `name`; refused if there is no such active key.
pub fn revoke_key(name: &str, actor: &str) -> PendingEntry {
    let name = name.to_owned();
    PendingEntry::checked(KEY_REVOKED, actor, move |tx| match find(tx, &name)? {
        None => Err(Rejection::Refused(format!("no key named `{name}`"))),
        Some(key) if key.revoked_seq.is_some() => Err(Rejection::Refused(format!(
            "key `{name}` is already revoked"
        ))),
        Some(_) => Ok(json!({"name": name})),
    })
}

fn validate_name(name: &str) -> Result<(), Rejection> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        return Err(Rejection::Refused(format!(
            "key name `{name}` must be 1 to 64 letters, digits, `-`, `_`, `.` or `@`"
        )));
    }
    Ok(())
}

/// Every key, active or revoked, by name.
pub fn list_keys(backend: &mut dyn Backend) -> Result<Vec<KeyRecord>, StoreError> {
    read(backend, |tx| {
        let rows = tx.query(&format!("{SELECT_KEY} ORDER BY name"), &[])?;
        rows.iter().map(|row| key_record(row)).collect()
    })
}

/// The active key holding `token`, if any: what the gateway checks on every request.
pub fn authenticate(
    backend: &mut dyn Backend,
    token: &str,
) -> Result<Option<KeyRecord>, StoreError> {
    read(backend, |tx| find_active(tx, token))
}

/// [`authenticate`] inside a transaction, for a caller that reads more in the same snapshot.
pub fn find_active(tx: &mut dyn Tx, token: &str) -> Result<Option<KeyRecord>, StoreError> {
    let hash = token_hash(token);
    let sql = format!("{SELECT_KEY} WHERE token_sha256 = $1 AND revoked_seq IS NULL");
    tx.query_row(&sql, &[hash.as_str().into()])?
        .map(|row| key_record(&row))
        .transpose()
}

const SELECT_KEY: &str = "SELECT name, role, created_seq, created_at, created_by, revoked_seq, \
                          revoked_at FROM access_keys";

fn find(tx: &mut dyn Tx, name: &str) -> Result<Option<KeyRecord>, StoreError> {
    let sql = format!("{SELECT_KEY} WHERE name = $1");
    tx.query_row(&sql, &[name.into()])?
        .map(|row| key_record(&row))
        .transpose()
}

fn key_record(row: &[SqlValue]) -> Result<KeyRecord, StoreError> {
    let role_text = row[1].text("access_keys.role")?;
    let role = role_text.parse().map_err(|problem| StoreError::Column {
        column: "access_keys.role".into(),
        problem,
    })?;
    let optional_text = |value: &SqlValue| match value {
        SqlValue::Null => Ok(None),
        other => other
            .text("access_keys.revoked_at")
            .map(|text| Some(text.to_owned())),
    };
    let revoked_seq = match &row[5] {
        SqlValue::Null => None,
        other => Some(other.count("access_keys.revoked_seq")?),
    };
    Ok(KeyRecord {
        name: row[0].text("access_keys.name")?.to_owned(),
        role,
        created_seq: row[2].count("access_keys.created_seq")?,
        created_at: row[3].text("access_keys.created_at")?.to_owned(),
        created_by: row[4].text("access_keys.created_by")?.to_owned(),
        revoked_seq,
        revoked_at: optional_text(&row[6])?,
    })
}

/// Keeps `access_keys` in step with `key.*` entries.
pub struct AccessKeysProjection;

impl Projection for AccessKeysProjection {
    fn project(&self, tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
        let field = |name: &str| {
            entry
                .body
                .get(name)
                .and_then(|value| value.as_str())
                .unwrap_or("")
        };
        match entry.kind.as_str() {
            KEY_CREATED => {
                tx.execute(
                    "INSERT INTO access_keys (name, role, token_sha256, created_seq, created_at, \
                     created_by) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        field("name").into(),
                        field("role").into(),
                        field("token_sha256").into(),
                        entry.seq.into(),
                        entry.time.to_string().into(),
                        entry.actor.as_str().into(),
                    ],
                )?;
            }
            KEY_REVOKED => {
                tx.execute(
                    "UPDATE access_keys SET revoked_seq = $1, revoked_at = $2 WHERE name = $3",
                    &[
                        entry.seq.into(),
                        entry.time.to_string().into(),
                        field("name").into(),
                    ],
                )?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ascribe_ledger::NoteSigner;
    use ascribe_store::{Ledger, SqliteBackend, SystemClock, TreeHeadPolicy};

    fn ledger(directory: &std::path::Path) -> Ledger {
        let signer = NoteSigner::from_seed("ascribe.test/ledger", [1u8; 32]);
        let mut backend = SqliteBackend::open(&directory.join("ledger.db")).expect("opens");
        Ledger::init(&mut backend, &signer).expect("init");
        create_tables(&mut backend).expect("tables");
        let mut ledger = Ledger::open(
            Box::new(backend),
            signer,
            Box::new(SystemClock),
            TreeHeadPolicy::EveryBatch,
        )
        .expect("opens");
        ledger.add_projection(Box::new(AccessKeysProjection));
        ledger
    }

    fn append(ledger: &mut Ledger, pending: PendingEntry) -> Result<Entry, String> {
        let mut outcomes = ledger
            .append_batch(&[pending])
            .map_err(|error| error.to_string())?;
        match outcomes.pop() {
            Some(Ok(appended)) => Ok(appended.entry),
            Some(Err(rejection)) => Err(rejection.to_string()),
            None => Err("no outcome".into()),
        }
    }

    #[test]
    fn created_key_authenticates_until_revoked() {
        let directory = tempfile::tempdir().expect("tempdir");
        let mut ledger = ledger(directory.path());
        let token = new_token().expect("token");
        let entry = append(
            &mut ledger,
            create_key("ops", Role::Admin, &token.token_sha256, "cli:root"),
        )
        .expect("created");
        assert_eq!(entry.body["role"], "admin");
        assert!(!entry
            .to_canonical_bytes()
            .expect("bytes")
            .windows(4)
            .any(|w| w == b"asc_"));

        let found = authenticate(ledger.backend(), &token.token)
            .expect("reads")
            .expect("found");
        assert_eq!((found.name.as_str(), found.role), ("ops", Role::Admin));
        assert!(authenticate(ledger.backend(), "asc_wrong")
            .expect("reads")
            .is_none());

        let error = append(
            &mut ledger,
            create_key("ops", Role::Caller, "00", "cli:root"),
        )
        .expect_err("duplicate name");
        assert!(error.contains("already exists"), "{error}");

        append(&mut ledger, revoke_key("ops", "cli:root")).expect("revoked");
        assert!(authenticate(ledger.backend(), &token.token)
            .expect("reads")
            .is_none());
        let keys = list_keys(ledger.backend()).expect("lists");
        assert_eq!(keys[0].revoked_seq, Some(1));
        let error = append(&mut ledger, revoke_key("ops", "cli:root")).expect_err("twice");
        assert!(error.contains("already revoked"), "{error}");
    }
}
