//! Registry changes as pending ledger entries, each checked under the write lock.
//!
//! Entry bodies, by kind:
//!
//! | kind | body |
//! | --- | --- |
//! | `document.stored` | `digest`, `name`, `size`, `role`, `media_type` |
//! | `checkpoint.registered` | `id`, `kind`, `provider`, `snapshot`, `manifest`, `card`, `evaluation`, `lineage`, `note` |
//! | `deployment.registered` | `name`, `checkpoint`, `dialect`, `base_url`, `upstream_model`, `expect_served`, `api_key_env`, `moving_name`, `retention` |
//! | `alias.created` | `alias`, `deployment`, `checkpoint`, `require_evidence`, `on_mismatch`, `answer_model` |
//! | `alias.rotated` | `alias`, `from` and `to` (each `deployment`, `checkpoint`), `kind`, `reason`, `evidence` |
//!
//! Deployments and checkpoints are never changed after registration: a new configuration is
//! a new deployment, so every past inference keeps pointing at exactly what served it.

use ascribe_store::{PendingEntry, Rejection, SqlValue, Tx};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::model::{
    is_moving_name, AnswerModel, CheckpointKind, Dialect, DocumentRef, DocumentRole, Evidence,
    MismatchPolicy, Retention, RotationKind,
};
use crate::queries;

/// Entry kind of a stored document.
pub const DOCUMENT_STORED: &str = "document.stored";
/// Entry kind of a new checkpoint.
pub const CHECKPOINT_REGISTERED: &str = "checkpoint.registered";
/// Entry kind of a new deployment.
pub const DEPLOYMENT_REGISTERED: &str = "deployment.registered";
/// Entry kind of a new alias.
pub const ALIAS_CREATED: &str = "alias.created";
/// Entry kind of an alias moving to another deployment.
pub const ALIAS_ROTATED: &str = "alias.rotated";

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024;

/// A document to store: a card, an evaluation profile, a lineage record or evidence.
#[derive(Clone, Debug)]
pub struct NewDocument {
    /// What it is for.
    pub role: DocumentRole,
    /// The file name it came from.
    pub name: String,
    /// Its bytes.
    pub content: Vec<u8>,
}

impl NewDocument {
    /// Checks the document's size and, for evaluation profiles and lineage, its shape:
    /// an evaluation profile is a JSON object with a `metrics` object and a `data_digest`
    /// string; lineage is a JSON object whose `sources` array lists objects with `id` and
    /// `digest` strings.
    pub fn validate(&self) -> Result<(), String> {
        if self.content.len() > MAX_DOCUMENT_SIZE {
            return Err(format!(
                "document `{}` is {} bytes; the limit is {MAX_DOCUMENT_SIZE}",
                self.name,
                self.content.len()
            ));
        }
        match self.role {
            DocumentRole::Evaluation => check_evaluation(&self.name, &self.content),
            DocumentRole::Lineage => check_lineage(&self.name, &self.content),
            DocumentRole::Card | DocumentRole::Evidence => Ok(()),
        }
    }

    /// `sha256:<hex>` of the content.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.content)))
    }

    /// How entries refer to this document.
    pub fn reference(&self) -> DocumentRef {
        DocumentRef {
            digest: self.digest(),
            name: self.name.clone(),
            size: self.content.len() as u64,
        }
    }

    fn media_type(&self) -> &'static str {
        let json = serde_json::from_slice::<Value>(&self.content).is_ok();
        match (json, std::str::from_utf8(&self.content).is_ok()) {
            (true, _) => "application/json",
            (false, true) if self.name.ends_with(".md") => "text/markdown",
            (false, true) => "text/plain",
            (false, false) => "application/octet-stream",
        }
    }
}

fn parse_json_object(name: &str, content: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_slice(content) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(format!("`{name}` must be a JSON object")),
    }
}

fn check_evaluation(name: &str, content: &[u8]) -> Result<(), String> {
    let object = parse_json_object(name, content)?;
    let has_metrics = object.get("metrics").is_some_and(Value::is_object);
    let has_digest = object.get("data_digest").is_some_and(Value::is_string);
    if !has_metrics || !has_digest {
        return Err(format!(
            "evaluation profile `{name}` needs a `metrics` object and a `data_digest` string"
        ));
    }
    Ok(())
}

fn check_lineage(name: &str, content: &[u8]) -> Result<(), String> {
    let object = parse_json_object(name, content)?;
    let source_ok = |source: &Value| {
        source.get("id").is_some_and(Value::is_string)
            && source.get("digest").is_some_and(Value::is_string)
    };
    match object.get("sources").and_then(Value::as_array) {
        Some(sources) if !sources.is_empty() && sources.iter().all(source_ok) => Ok(()),
        _ => Err(format!(
            "lineage `{name}` needs a non-empty `sources` array of objects with `id` and `digest`"
        )),
    }
}

/// The entry that stores a document; refused when that digest is already stored (then the
/// existing copy serves).
pub fn store_document(document: NewDocument, actor: &str) -> PendingEntry {
    PendingEntry::checked(DOCUMENT_STORED, actor, move |tx| {
        document.validate().map_err(Rejection::Refused)?;
        let digest = document.digest();
        if queries::document_exists(tx, &digest)? {
            return Err(Rejection::Refused(format!(
                "document {digest} is already stored"
            )));
        }
        tx.execute(
            "INSERT INTO registry_document_contents (digest, content_base64) VALUES ($1, $2)",
            &[
                digest.as_str().into(),
                BASE64.encode(&document.content).into(),
            ],
        )?;
        Ok(json!({
            "digest": digest,
            "name": document.name,
            "size": document.content.len(),
            "role": document.role.to_string(),
            "media_type": document.media_type(),
        }))
    })
}

/// A checkpoint to register.
#[derive(Clone, Debug, Default)]
pub struct NewCheckpoint {
    /// Provider and snapshot of a hosted checkpoint.
    pub hosted: Option<(String, String)>,
    /// The weight manifest (as `ascribe hash --json` prints it) of self-hosted weights.
    pub manifest: Option<Value>,
    /// The model card, already stored or stored in the same batch.
    pub card: Option<DocumentRef>,
    /// The evaluation profile.
    pub evaluation: Option<DocumentRef>,
    /// The training-data lineage.
    pub lineage: Option<DocumentRef>,
    /// A free-text note.
    pub note: Option<String>,
}

impl NewCheckpoint {
    /// The checkpoint id: `<provider>:<snapshot>`, or the manifest's `checkpoint` member.
    pub fn id(&self) -> Result<String, String> {
        match (&self.hosted, &self.manifest) {
            (Some((provider, snapshot)), None) => {
                check_name("provider", provider)?;
                check_name("snapshot", snapshot)?;
                Ok(format!("{provider}:{snapshot}"))
            }
            (None, Some(manifest)) => manifest_checkpoint(manifest),
            _ => Err("a checkpoint is either hosted (provider and snapshot) or weights".into()),
        }
    }
}

/// The checkpoint id a weight manifest states, after checking that it is the digest of the
/// manifest's own file list: a manifest edited by hand cannot claim another checkpoint.
fn manifest_checkpoint(manifest: &Value) -> Result<String, String> {
    let manifest: ascribe_weights::WeightManifest = serde_json::from_value(manifest.clone())
        .map_err(|error| {
            format!("weight manifest is not in `ascribe hash --json` form: {error}")
        })?;
    let recomputed = ascribe_weights::checkpoint_id(&manifest.files)
        .map_err(|error| format!("weight manifest cannot be hashed: {error}"))?;
    if recomputed != manifest.checkpoint {
        return Err(format!(
            "weight manifest says {} but its files hash to {recomputed}",
            manifest.checkpoint
        ));
    }
    Ok(recomputed)
}

/// The entry that registers a checkpoint; refused when the id exists or a document it names
/// was never stored.
pub fn register_checkpoint(checkpoint: NewCheckpoint, actor: &str) -> PendingEntry {
    PendingEntry::checked(CHECKPOINT_REGISTERED, actor, move |tx| {
        let id = checkpoint.id().map_err(Rejection::Refused)?;
        if queries::find_checkpoint(tx, &id)?.is_some() {
            return Err(Rejection::Refused(format!(
                "checkpoint {id} is already registered"
            )));
        }
        for document in [
            &checkpoint.card,
            &checkpoint.evaluation,
            &checkpoint.lineage,
        ]
        .into_iter()
        .flatten()
        {
            if !queries::document_exists(tx, &document.digest)? {
                return Err(Rejection::Refused(format!(
                    "document {} ({}) is not stored",
                    document.digest, document.name
                )));
            }
        }
        let (kind, provider, snapshot) = match &checkpoint.hosted {
            Some((provider, snapshot)) => (CheckpointKind::Hosted, Some(provider), Some(snapshot)),
            None => (CheckpointKind::Weights, None, None),
        };
        Ok(json!({
            "id": id,
            "kind": kind.to_string(),
            "provider": provider,
            "snapshot": snapshot,
            "manifest": checkpoint.manifest,
            "card": checkpoint.card,
            "evaluation": checkpoint.evaluation,
            "lineage": checkpoint.lineage,
            "note": checkpoint.note,
        }))
    })
}

/// A deployment to register.
#[derive(Clone, Debug)]
pub struct NewDeployment {
    /// Its name, never reused.
    pub name: String,
    /// The checkpoint it reaches.
    pub checkpoint: String,
    /// How its upstream speaks.
    pub dialect: Dialect,
    /// The upstream's base URL.
    pub base_url: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// The served model expected back; default: the snapshot (hosted) or upstream model.
    pub expect_served: Option<String>,
    /// The environment variable holding the provider key.
    pub api_key_env: Option<String>,
    /// Accept a moving upstream name; the deployment is then flagged in every answer.
    pub allow_moving_name: bool,
    /// What the gateway keeps of bodies.
    pub retention: Retention,
}

/// The entry that registers a deployment.
pub fn register_deployment(deployment: NewDeployment, actor: &str) -> PendingEntry {
    PendingEntry::checked(DEPLOYMENT_REGISTERED, actor, move |tx| {
        let new = &deployment;
        check_name("deployment name", &new.name).map_err(Rejection::Refused)?;
        check_name("upstream model", &new.upstream_model).map_err(Rejection::Refused)?;
        if !(new.base_url.starts_with("http://") || new.base_url.starts_with("https://")) {
            return Err(refused(format!(
                "base URL `{}` must start with http:// or https://",
                new.base_url
            )));
        }
        if queries::find_deployment(tx, &new.name)?.is_some() {
            return Err(refused(format!(
                "deployment `{}` already exists; deployments never change, register a new one",
                new.name
            )));
        }
        let Some(checkpoint) = queries::find_checkpoint(tx, &new.checkpoint)? else {
            return Err(refused(format!(
                "checkpoint {} is not registered",
                new.checkpoint
            )));
        };
        let moving = is_moving_name(
            &new.upstream_model,
            checkpoint.kind,
            checkpoint.snapshot.as_deref(),
        );
        if moving && !new.allow_moving_name {
            return Err(refused(format!(
                "upstream model `{}` is a moving name, not the pinned snapshot `{}`; use the \
                 snapshot, or pass --allow-moving-name to accept a deployment that is flagged \
                 in every audit answer",
                new.upstream_model,
                checkpoint.snapshot.as_deref().unwrap_or("(none)")
            )));
        }
        let expect_served = new.expect_served.clone().unwrap_or_else(|| {
            checkpoint
                .snapshot
                .clone()
                .unwrap_or_else(|| new.upstream_model.clone())
        });
        Ok(json!({
            "name": new.name,
            "checkpoint": new.checkpoint,
            "dialect": new.dialect.to_string(),
            "base_url": new.base_url,
            "upstream_model": new.upstream_model,
            "expect_served": expect_served,
            "api_key_env": new.api_key_env,
            "moving_name": moving,
            "retention": new.retention.to_string(),
        }))
    })
}

/// An alias to create.
#[derive(Clone, Debug)]
pub struct NewAlias {
    /// The name callers send as `model`.
    pub name: String,
    /// The deployment it starts on.
    pub deployment: String,
    /// Whether every rotation must carry evidence.
    pub require_evidence: bool,
    /// What the gateway does on a served-identity mismatch.
    pub on_mismatch: MismatchPolicy,
    /// Which model name answers carry.
    pub answer_model: AnswerModel,
}

/// The entry that creates an alias.
pub fn create_alias(alias: NewAlias, actor: &str) -> PendingEntry {
    PendingEntry::checked(ALIAS_CREATED, actor, move |tx| {
        check_name("alias name", &alias.name).map_err(Rejection::Refused)?;
        if queries::find_alias(tx, &alias.name)?.is_some() {
            return Err(refused(format!(
                "alias `{}` already exists; rotate it instead",
                alias.name
            )));
        }
        let checkpoint = deployment_checkpoint(tx, &alias.deployment)?;
        Ok(json!({
            "alias": alias.name,
            "deployment": alias.deployment,
            "checkpoint": checkpoint,
            "require_evidence": alias.require_evidence,
            "on_mismatch": alias.on_mismatch.to_string(),
            "answer_model": alias.answer_model.to_string(),
        }))
    })
}

/// A rotation to make. With `to: None` it is a rollback to the deployment the alias pointed
/// at before its current one.
#[derive(Clone, Debug)]
pub struct NewRotation {
    /// The alias to move.
    pub alias: String,
    /// Where to move it; `None` for a rollback.
    pub to: Option<String>,
    /// Why it moves.
    pub kind: RotationKind,
    /// The reason, in words.
    pub reason: String,
    /// The evidence, if any.
    pub evidence: Option<Evidence>,
}

/// The entry that rotates (or rolls back) an alias. The target is resolved and every rule
/// checked under the write lock, so concurrent rotations are applied one after the other.
pub fn rotate_alias(rotation: NewRotation, actor: &str) -> PendingEntry {
    PendingEntry::checked(ALIAS_ROTATED, actor, move |tx| {
        let Some(alias) = queries::find_alias(tx, &rotation.alias)? else {
            return Err(refused(format!(
                "alias `{}` does not exist",
                rotation.alias
            )));
        };
        if rotation.reason.trim().is_empty() {
            return Err(refused("a rotation needs a reason".into()));
        }
        if alias.require_evidence && rotation.evidence.is_none() {
            return Err(refused(format!(
                "alias `{}` requires evidence for every rotation; pass --evidence FILE|URI",
                alias.name
            )));
        }
        let target = match &rotation.to {
            Some(target) => target.clone(),
            None => queries::previous_deployment(tx, &alias.name)?.ok_or_else(|| {
                refused(format!(
                    "alias `{}` has no earlier deployment to roll back to",
                    alias.name
                ))
            })?,
        };
        if target == alias.deployment {
            return Err(refused(format!(
                "alias `{}` already points at `{target}`",
                alias.name
            )));
        }
        let from_checkpoint = deployment_checkpoint(tx, &alias.deployment)?;
        let to_checkpoint = deployment_checkpoint(tx, &target)?;
        Ok(json!({
            "alias": alias.name,
            "from": {"deployment": alias.deployment, "checkpoint": from_checkpoint},
            "to": {"deployment": target, "checkpoint": to_checkpoint},
            "kind": rotation.kind.to_string(),
            "reason": rotation.reason,
            "evidence": rotation.evidence,
        }))
    })
}

fn deployment_checkpoint(tx: &mut dyn Tx, deployment: &str) -> Result<String, Rejection> {
    let found = queries::find_deployment(tx, deployment)?;
    found
        .map(|deployment| deployment.checkpoint)
        .ok_or_else(|| refused(format!("deployment `{deployment}` does not exist")))
}

fn refused(reason: String) -> Rejection {
    Rejection::Refused(reason)
}

/// Names are 1 to 128 printable ASCII characters without spaces.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(format!(
            "{what} `{name}` must be 1 to 128 printable characters without spaces"
        ));
    }
    Ok(())
}

/// Converts a query value that may be NULL into an optional string.
pub(crate) fn optional_text(
    value: &SqlValue,
    column: &str,
) -> Result<Option<String>, ascribe_store::StoreError> {
    match value {
        SqlValue::Null => Ok(None),
        other => other.text(column).map(|text| Some(text.to_owned())),
    }
}
