//! `ascribe apply FILE`: a declarative registry, turned into the entries that make it so.
//!
//! The file lists `[[checkpoint]]`, `[[deployment]]` and `[[alias]]` tables (see
//! `docs/registry.md`). [`plan`] compares it with the registry and lists the changes:
//! documents and checkpoints to register, deployments to register, aliases to create or
//! rotate. What already matches yields no change, so applying a file twice writes nothing.
//! Checkpoints and deployments never change once registered; a file that describes one
//! differently is refused with the name of the record, rather than silently ignored.
//!
//! Paths in the file (weights, cards, evaluation profiles, lineage, evidence) are relative to
//! the file's directory. Weights are hashed by the caller's `hash_weights` function.

use std::path::{Path, PathBuf};

use ascribe_store::{Backend, PendingEntry, StoreError};
use serde::Deserialize;

use crate::changes::{
    create_alias, register_checkpoint, register_deployment, rotate_alias, store_document, NewAlias,
    NewCheckpoint, NewDeployment, NewDocument, NewRotation,
};
use crate::model::{
    AnswerModel, Dialect, DocumentRef, DocumentRole, Evidence, MismatchPolicy, Retention,
    RotationKind,
};
use crate::queries;

/// A registry file as written by people.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// Checkpoints to register.
    #[serde(default)]
    pub checkpoint: Vec<CheckpointSpec>,
    /// Deployments to register.
    #[serde(default)]
    pub deployment: Vec<DeploymentSpec>,
    /// Aliases to create or rotate.
    #[serde(default)]
    pub alias: Vec<AliasSpec>,
}

/// One `[[checkpoint]]`: hosted (`provider` and `snapshot`) or weights (`weights`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// A label deployments in the same file may use instead of the checkpoint id.
    pub name: Option<String>,
    /// The provider of a hosted snapshot (`openai`, `anthropic`).
    pub provider: Option<String>,
    /// The provider's snapshot name.
    pub snapshot: Option<String>,
    /// A weights file or directory, hashed into the checkpoint id.
    pub weights: Option<PathBuf>,
    /// The model card file.
    pub card: Option<PathBuf>,
    /// The evaluation profile file.
    pub evaluation: Option<PathBuf>,
    /// The training-data lineage file.
    pub lineage: Option<PathBuf>,
    /// A free-text note.
    pub note: Option<String>,
}

/// One `[[deployment]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// The deployment's name.
    pub name: String,
    /// A checkpoint id, or the `name` of a `[[checkpoint]]` in the same file.
    pub checkpoint: String,
    /// `openai`, `azure-openai`, `anthropic` or `openai-compatible`.
    pub dialect: String,
    /// The upstream's base URL.
    pub base_url: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// The served model expected back.
    pub expect_served: Option<String>,
    /// The environment variable holding the provider key.
    pub api_key_env: Option<String>,
    /// Accept a moving upstream name.
    #[serde(default)]
    pub allow_moving_name: bool,
    /// `digest` (default) or `full`.
    pub retention: Option<String>,
}

/// One `[[alias]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasSpec {
    /// The alias.
    pub name: String,
    /// The deployment it must point at.
    pub deployment: String,
    /// Whether every rotation must carry evidence (only at creation).
    #[serde(default)]
    pub require_evidence: bool,
    /// `flag` (default) or `reject` (only at creation).
    pub on_mismatch: Option<String>,
    /// `served` (default) or `requested`: the model name answers carry (only at creation).
    pub answer_model: Option<String>,
    /// The kind of rotation when the alias exists and points elsewhere.
    pub rotation_kind: Option<String>,
    /// Why it rotates; falls back to the reason given to `ascribe apply`.
    pub reason: Option<String>,
    /// Evidence for the rotation: a file path or a URI.
    pub evidence: Option<String>,
}

/// One change the file calls for.
#[derive(Debug)]
pub enum PlannedChange {
    /// Store a document.
    StoreDocument(NewDocument),
    /// Register a checkpoint.
    RegisterCheckpoint(String, NewCheckpoint),
    /// Register a deployment.
    RegisterDeployment(NewDeployment),
    /// Create an alias.
    CreateAlias(NewAlias),
    /// Rotate an alias.
    RotateAlias(NewRotation),
}

impl PlannedChange {
    /// One line saying what the change does.
    pub fn describe(&self) -> String {
        match self {
            PlannedChange::StoreDocument(document) => {
                format!(
                    "store {} `{}` ({})",
                    document.role,
                    document.name,
                    document.digest()
                )
            }
            PlannedChange::RegisterCheckpoint(id, _) => format!("register checkpoint {id}"),
            PlannedChange::RegisterDeployment(deployment) => format!(
                "register deployment `{}` -> {}",
                deployment.name, deployment.checkpoint
            ),
            PlannedChange::CreateAlias(alias) => {
                format!("create alias `{}` -> `{}`", alias.name, alias.deployment)
            }
            PlannedChange::RotateAlias(rotation) => format!(
                "rotate alias `{}` -> `{}` ({}: {})",
                rotation.alias,
                rotation.to.as_deref().unwrap_or("previous"),
                rotation.kind,
                rotation.reason
            ),
        }
    }

    /// The entry that makes the change.
    pub fn into_entry(self, actor: &str) -> PendingEntry {
        match self {
            PlannedChange::StoreDocument(document) => store_document(document, actor),
            PlannedChange::RegisterCheckpoint(_, checkpoint) => {
                register_checkpoint(checkpoint, actor)
            }
            PlannedChange::RegisterDeployment(deployment) => register_deployment(deployment, actor),
            PlannedChange::CreateAlias(alias) => create_alias(alias, actor),
            PlannedChange::RotateAlias(rotation) => rotate_alias(rotation, actor),
        }
    }
}

/// Why a registry file cannot be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The file is not valid TOML for a registry (the message carries the line).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A file the registry file names could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file asks for something the registry does not allow.
    #[error("{0}")]
    Invalid(String),
    /// The registry could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a registry file.
pub fn parse(path: &Path) -> Result<RegistryFile, ApplyError> {
    let text = std::fs::read_to_string(path).map_err(|source| ApplyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|error| ApplyError::Syntax {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

/// What the weights hasher returns: the manifest as `ascribe hash --json` prints it.
pub type HashWeights<'a> = &'a dyn Fn(&Path) -> Result<serde_json::Value, String>;

/// Lists the changes that make the registry match `file`, in the order they must be applied.
pub fn plan(
    backend: &mut dyn Backend,
    file: &RegistryFile,
    base: &Path,
    default_reason: Option<&str>,
    hash_weights: HashWeights<'_>,
) -> Result<Vec<PlannedChange>, ApplyError> {
    let mut changes = Vec::new();
    let mut labels = Vec::new();
    for spec in &file.checkpoint {
        let id = plan_checkpoint(backend, spec, base, hash_weights, &mut changes)?;
        if let Some(name) = &spec.name {
            labels.push((name.clone(), id));
        }
    }
    for spec in &file.deployment {
        plan_deployment(backend, spec, &labels, &mut changes)?;
    }
    for spec in &file.alias {
        plan_alias(backend, spec, base, default_reason, &mut changes)?;
    }
    Ok(changes)
}

fn invalid(message: String) -> ApplyError {
    ApplyError::Invalid(message)
}

fn plan_checkpoint(
    backend: &mut dyn Backend,
    spec: &CheckpointSpec,
    base: &Path,
    hash_weights: HashWeights<'_>,
    changes: &mut Vec<PlannedChange>,
) -> Result<String, ApplyError> {
    let mut checkpoint = NewCheckpoint {
        note: spec.note.clone(),
        ..NewCheckpoint::default()
    };
    match (&spec.provider, &spec.snapshot, &spec.weights) {
        (Some(provider), Some(snapshot), None) => {
            checkpoint.hosted = Some((provider.clone(), snapshot.clone()));
        }
        (None, None, Some(weights)) => {
            let manifest = hash_weights(&base.join(weights)).map_err(invalid)?;
            checkpoint.manifest = Some(manifest);
        }
        _ => {
            return Err(invalid(
                "each [[checkpoint]] needs either provider and snapshot, or weights".into(),
            ))
        }
    }
    let id = checkpoint.id().map_err(invalid)?;
    checkpoint.card = plan_document(backend, DocumentRole::Card, base, &spec.card, changes)?;
    checkpoint.evaluation = plan_document(
        backend,
        DocumentRole::Evaluation,
        base,
        &spec.evaluation,
        changes,
    )?;
    checkpoint.lineage =
        plan_document(backend, DocumentRole::Lineage, base, &spec.lineage, changes)?;

    match queries::checkpoint(backend, &id)? {
        None => changes.push(PlannedChange::RegisterCheckpoint(id.clone(), checkpoint)),
        Some(existing) => {
            let same = existing.card == checkpoint.card
                && existing.evaluation == checkpoint.evaluation
                && existing.lineage == checkpoint.lineage;
            if !same {
                return Err(invalid(format!(
                    "checkpoint {id} is registered with other documents; checkpoints never change"
                )));
            }
        }
    }
    Ok(id)
}

/// Reads a document named in the file and plans its storage unless it is already stored or
/// planned; returns how entries refer to it.
pub fn plan_document(
    backend: &mut dyn Backend,
    role: DocumentRole,
    base: &Path,
    path: &Option<PathBuf>,
    changes: &mut Vec<PlannedChange>,
) -> Result<Option<DocumentRef>, ApplyError> {
    let Some(path) = path else { return Ok(None) };
    let document = read_document(role, &base.join(path))?;
    document.validate().map_err(invalid)?;
    let reference = document.reference();
    let already_planned = changes.iter().any(|change| match change {
        PlannedChange::StoreDocument(planned) => planned.digest() == reference.digest,
        _ => false,
    });
    let stored = ascribe_store::query::read(backend, |tx| {
        queries::document_exists(tx, &reference.digest)
    })?;
    if !stored && !already_planned {
        changes.push(PlannedChange::StoreDocument(document));
    }
    Ok(Some(reference))
}

/// Reads a file into a document to store.
pub fn read_document(role: DocumentRole, path: &Path) -> Result<NewDocument, ApplyError> {
    let content = std::fs::read(path).map_err(|source| ApplyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    Ok(NewDocument {
        role,
        name,
        content,
    })
}

fn plan_deployment(
    backend: &mut dyn Backend,
    spec: &DeploymentSpec,
    labels: &[(String, String)],
    changes: &mut Vec<PlannedChange>,
) -> Result<(), ApplyError> {
    let checkpoint = labels
        .iter()
        .find(|(label, _)| *label == spec.checkpoint)
        .map_or_else(|| spec.checkpoint.clone(), |(_, id)| id.clone());
    let dialect: Dialect = spec.dialect.parse().map_err(invalid)?;
    let retention: Retention = spec
        .retention
        .as_deref()
        .unwrap_or("digest")
        .parse()
        .map_err(invalid)?;
    let Some(existing) = queries::deployment(backend, &spec.name)? else {
        changes.push(PlannedChange::RegisterDeployment(NewDeployment {
            name: spec.name.clone(),
            checkpoint,
            dialect,
            base_url: spec.base_url.clone(),
            upstream_model: spec.upstream_model.clone(),
            expect_served: spec.expect_served.clone(),
            api_key_env: spec.api_key_env.clone(),
            allow_moving_name: spec.allow_moving_name,
            retention,
        }));
        return Ok(());
    };
    let same = existing.checkpoint == checkpoint
        && existing.dialect == dialect
        && existing.base_url == spec.base_url
        && existing.upstream_model == spec.upstream_model
        && spec
            .expect_served
            .as_ref()
            .is_none_or(|expected| *expected == existing.expect_served)
        && existing.api_key_env == spec.api_key_env
        && existing.retention == retention;
    if !same {
        return Err(invalid(format!(
            "deployment `{}` exists with other settings; deployments never change, so give the \
             new settings a new name and rotate the alias to it",
            spec.name
        )));
    }
    Ok(())
}

fn plan_alias(
    backend: &mut dyn Backend,
    spec: &AliasSpec,
    base: &Path,
    default_reason: Option<&str>,
    changes: &mut Vec<PlannedChange>,
) -> Result<(), ApplyError> {
    let on_mismatch: MismatchPolicy = spec
        .on_mismatch
        .as_deref()
        .unwrap_or("flag")
        .parse()
        .map_err(invalid)?;
    let answer_model: AnswerModel = spec
        .answer_model
        .as_deref()
        .unwrap_or("served")
        .parse()
        .map_err(invalid)?;
    let Some(existing) = queries::alias(backend, &spec.name)? else {
        changes.push(PlannedChange::CreateAlias(NewAlias {
            name: spec.name.clone(),
            deployment: spec.deployment.clone(),
            require_evidence: spec.require_evidence,
            on_mismatch,
            answer_model,
        }));
        return Ok(());
    };
    let fixed_at_creation = (
        existing.require_evidence,
        existing.on_mismatch,
        existing.answer_model,
    );
    if fixed_at_creation != (spec.require_evidence, on_mismatch, answer_model) {
        // LIMITATION: an alias's evidence rule and mismatch policy are fixed at creation; no
        // entry kind changes them yet, so the file must repeat the values it was created with.
        return Err(invalid(format!(
            "alias `{}` was created with require_evidence = {}, on_mismatch = {} and \
             answer_model = {}; these cannot be changed",
            spec.name, existing.require_evidence, existing.on_mismatch, existing.answer_model
        )));
    }
    if existing.deployment == spec.deployment {
        return Ok(());
    }
    let kind: RotationKind = spec
        .rotation_kind
        .as_deref()
        .ok_or_else(|| invalid(format!("alias `{}` moves: set rotation_kind", spec.name)))?
        .parse()
        .map_err(invalid)?;
    let reason = spec.reason.as_deref().or(default_reason).ok_or_else(|| {
        invalid(format!(
            "alias `{}` moves: set reason in the file or pass --reason",
            spec.name
        ))
    })?;
    let evidence = match &spec.evidence {
        None => None,
        Some(evidence) => Some(plan_evidence(backend, evidence, base, changes)?),
    };
    changes.push(PlannedChange::RotateAlias(NewRotation {
        alias: spec.name.clone(),
        to: Some(spec.deployment.clone()),
        kind,
        reason: reason.to_owned(),
        evidence,
    }));
    Ok(())
}

/// Turns `--evidence FILE|URI` into evidence, planning the document's storage for a file.
pub fn plan_evidence(
    backend: &mut dyn Backend,
    evidence: &str,
    base: &Path,
    changes: &mut Vec<PlannedChange>,
) -> Result<Evidence, ApplyError> {
    if evidence.contains("://") {
        return Ok(Evidence::Uri(evidence.to_owned()));
    }
    let path = PathBuf::from(evidence);
    let reference = plan_document(backend, DocumentRole::Evidence, base, &Some(path), changes)?;
    reference
        .map(Evidence::Document)
        .ok_or_else(|| invalid("no evidence".into()))
}
