//! The registry's projection tables, in SQL both stores accept.

use ascribe_store::{Backend, StoreError};

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS registry_documents (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    role TEXT NOT NULL,
    media_type TEXT NOT NULL,
    stored_seq BIGINT NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_document_contents (
    digest TEXT PRIMARY KEY,
    content_base64 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_checkpoints (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    provider TEXT,
    snapshot TEXT,
    manifest_json TEXT,
    card_json TEXT,
    evaluation_json TEXT,
    lineage_json TEXT,
    note TEXT,
    registered_seq BIGINT NOT NULL,
    registered_at TEXT NOT NULL,
    registered_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_deployments (
    name TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    dialect TEXT NOT NULL,
    base_url TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    expect_served TEXT NOT NULL,
    api_key_env TEXT,
    moving_name BIGINT NOT NULL,
    retention TEXT NOT NULL,
    registered_seq BIGINT NOT NULL,
    registered_at TEXT NOT NULL,
    registered_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_aliases (
    name TEXT PRIMARY KEY,
    deployment TEXT NOT NULL,
    require_evidence BIGINT NOT NULL,
    on_mismatch TEXT NOT NULL,
    answer_model TEXT NOT NULL,
    current_seq BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_alias_segments (
    alias TEXT NOT NULL,
    start_seq BIGINT NOT NULL,
    start_time TEXT NOT NULL,
    end_seq BIGINT,
    end_time TEXT,
    deployment TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    evidence_json TEXT,
    PRIMARY KEY (alias, start_seq)
);
CREATE INDEX IF NOT EXISTS registry_alias_segments_start
    ON registry_alias_segments (alias, start_time, start_seq);
CREATE INDEX IF NOT EXISTS registry_alias_segments_checkpoint
    ON registry_alias_segments (checkpoint, start_time);
";

/// Creates the registry's tables if they do not exist.
pub fn create_tables(backend: &mut dyn Backend) -> Result<(), StoreError> {
    backend.write(&mut |tx| {
        for statement in TABLES.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            tx.execute(statement, &[])?;
        }
        Ok(())
    })
}
