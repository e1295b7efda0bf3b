//! Reading a ledger back straight from its database, and PostgreSQL schemas for tests.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use ascribe_ledger::Hash;
use ascribe_store::{open_backend, query, DatabaseLocation, StoredEntry};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The `inference.recorded` and `inference.completed` bodies, by inference id.
pub fn ledger_inferences(db: &str) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let location = DatabaseLocation::from_str(db).expect("a database URL");
    let mut backend = open_backend(&location, false).expect("the ledger opens");
    let (mut recorded, mut completed) = (BTreeMap::new(), BTreeMap::new());
    let mut from = 0;
    loop {
        let entries = query::entries(backend.as_mut(), from, 1000).expect("entries");
        let Some(last) = entries.last() else {
            break;
        };
        from = last.seq + 1;
        for stored in entries {
            let into = match stored.kind.as_str() {
                "inference.recorded" => &mut recorded,
                "inference.completed" => &mut completed,
                _ => continue,
            };
            let entry: Value = serde_json::from_str(&stored.entry).expect("entry JSON");
            let body = entry["body"].clone();
            let id = body["inference_id"].as_str().unwrap_or_default().to_owned();
            assert!(
                into.insert(id, body).is_none(),
                "one {} per inference",
                stored.kind
            );
        }
    }
    (recorded, completed)
}

/// Checks that a row is not torn: its entry parses as JSON and carries the row's `seq` and
/// `kind`, and its stored leaf hash is `SHA-256(0x00 || entry)`; returns the entry and hash.
pub fn untorn(row: &StoredEntry) -> (Value, Hash) {
    let entry: Value = serde_json::from_str(&row.entry)
        .unwrap_or_else(|error| panic!("entry {} is torn: {error}", row.seq));
    assert_eq!(entry["seq"], row.seq, "entry {}", row.seq);
    assert_eq!(entry["kind"], row.kind.as_str(), "entry {}", row.seq);
    let leaf: Hash = Sha256::new()
        .chain_update([0u8])
        .chain_update(row.entry.as_bytes())
        .finalize()
        .into();
    assert_eq!(row.leaf_hash, leaf, "leaf hash of {}", row.seq);
    (entry, leaf)
}

/// A fresh schema on the shared PostgreSQL server, dropped when the guard is.
pub struct Schema {
    /// The database URL that selects the schema.
    pub url: String,
    name: String,
}

impl Schema {
    /// Creates the schema.
    pub fn new() -> Schema {
        let url = ascribe_store::testing::fresh_postgres_schema();
        let name = url
            .rsplit_once("search_path%3D")
            .map(|(_, name)| name.to_owned())
            .expect("a schema in the URL");
        Schema { url, name }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let server = ascribe_store::testing::postgres_server_url();
        if let Ok(mut backend) = ascribe_store::PostgresBackend::connect(&server) {
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            let _ = backend.client().batch_execute(&drop);
        }
    }
}
