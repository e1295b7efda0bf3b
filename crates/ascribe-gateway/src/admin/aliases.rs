//! `/admin/v1/aliases`: create, rotate, roll back, list and show aliases.

use ascribe_registry::changes::{create_alias, rotate_alias, NewAlias, NewDocument, NewRotation};
use ascribe_registry::{queries, AliasRecord, DocumentRole, Evidence, RotationKind, Segment};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{append_change, record_alias, DocumentUpload};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathName};
use crate::state::AppState;

/// `POST /admin/v1/aliases`.
#[derive(Deserialize)]
pub(crate) struct AliasCreate {
    name: String,
    deployment: String,
    #[serde(default)]
    require_evidence: bool,
    on_mismatch: Option<String>,
    answer_model: Option<String>,
}

/// `POST /admin/v1/aliases/{name}/rotate`.
#[derive(Deserialize)]
pub(crate) struct AliasRotate {
    to: String,
    kind: String,
    reason: String,
    evidence: Option<EvidenceUpload>,
}

/// `POST /admin/v1/aliases/{name}/rollback`: back to the deployment before the current one.
#[derive(Deserialize)]
pub(crate) struct AliasRollback {
    reason: String,
    kind: Option<String>,
    evidence: Option<EvidenceUpload>,
}

/// Evidence for a rotation: `{"uri": ...}` or `{"document": {"name", "content_base64"}}`.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum EvidenceUpload {
    Uri(String),
    Document(DocumentUpload),
}

/// An alias created: its name and the `seq` of its entry.
#[derive(Serialize)]
pub(crate) struct AliasCreated {
    alias: String,
    seq: u64,
}

/// An alias moved: the `seq` of the rotation, where it moved from and to, and why.
#[derive(Serialize)]
pub(crate) struct AliasRotated {
    alias: String,
    seq: u64,
    from: Value,
    to: Value,
    kind: Value,
}

/// Every alias and where it points now, by name.
#[derive(Serialize)]
pub(crate) struct AliasList {
    aliases: Vec<AliasRecord>,
}

/// One alias and its whole history, oldest segment first.
#[derive(Serialize)]
pub(crate) struct AliasShown {
    alias: AliasRecord,
    history: Vec<Segment>,
}

pub(crate) async fn aliases_create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<AliasCreate>,
) -> Result<(StatusCode, Json<AliasCreated>), ApiError> {
    record_alias(&body.name);
    let on_mismatch = body.on_mismatch.as_deref().unwrap_or("flag");
    let alias = NewAlias {
        name: body.name.clone(),
        deployment: body.deployment,
        require_evidence: body.require_evidence,
        on_mismatch: on_mismatch.parse().map_err(ApiError::Invalid)?,
        answer_model: body
            .answer_model
            .as_deref()
            .unwrap_or("served")
            .parse()
            .map_err(ApiError::Invalid)?,
    };
    let change = create_alias(alias, admin.actor());
    let appended = append_change(&state, admin.actor(), Vec::new(), change).await?;
    let seq = appended.entry.seq;
    tracing::info!(seq, "alias created");
    let created = AliasCreated {
        alias: body.name,
        seq,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn aliases_rotate(
    State(state): State<AppState>,
    admin: Admin,
    PathName(name): PathName,
    JsonBody(body): JsonBody<AliasRotate>,
) -> Result<Json<AliasRotated>, ApiError> {
    record_alias(&name);
    let kind = body.kind.parse().map_err(ApiError::Invalid)?;
    let rotation = NewRotation {
        alias: name,
        to: Some(body.to),
        kind,
        reason: body.reason,
        evidence: None,
    };
    rotate(&state, &admin, rotation, body.evidence).await
}

pub(crate) async fn aliases_rollback(
    State(state): State<AppState>,
    admin: Admin,
    PathName(name): PathName,
    JsonBody(body): JsonBody<AliasRollback>,
) -> Result<Json<AliasRotated>, ApiError> {
    record_alias(&name);
    let kind = match body.kind.as_deref().unwrap_or("rollback").parse() {
        Ok(kind @ (RotationKind::Rollback | RotationKind::Incident)) => kind,
        _ => {
            return Err(ApiError::Invalid(
                "a rollback's `kind` is `rollback` or `incident`".to_owned(),
            ))
        }
    };
    let rotation = NewRotation {
        alias: name,
        to: None,
        kind,
        reason: body.reason,
        evidence: None,
    };
    rotate(&state, &admin, rotation, body.evidence).await
}

pub(crate) async fn aliases_list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<AliasList>, ApiError> {
    let aliases = state.read(queries::aliases).await?;
    Ok(Json(AliasList { aliases }))
}

pub(crate) async fn aliases_show(
    State(state): State<AppState>,
    _admin: Admin,
    PathName(name): PathName,
) -> Result<Json<AliasShown>, ApiError> {
    let lookup = name.clone();
    let found = state
        .read(move |backend| {
            let Some(alias) = queries::alias(backend, &lookup)? else {
                return Ok(None);
            };
            let history = queries::history(backend, &lookup)?;
            Ok(Some(AliasShown { alias, history }))
        })
        .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no alias `{name}`")))
}

/// Appends a rotation with its evidence, storing an evidence document first if needed.
async fn rotate(
    state: &AppState,
    admin: &Admin,
    mut rotation: NewRotation,
    evidence: Option<EvidenceUpload>,
) -> Result<Json<AliasRotated>, ApiError> {
    let mut documents = Vec::new();
    rotation.evidence = match evidence {
        None => None,
        Some(evidence) => Some(evidence_of(evidence, &mut documents)?),
    };
    let alias = rotation.alias.clone();
    let change = rotate_alias(rotation, admin.actor());
    let appended = append_change(state, admin.actor(), documents, change).await?;
    let seq = appended.entry.seq;
    tracing::info!(seq, "alias rotated");
    let body = appended.entry.body;
    Ok(Json(AliasRotated {
        alias,
        seq,
        from: body["from"].clone(),
        to: body["to"].clone(),
        kind: body["kind"].clone(),
    }))
}

fn evidence_of(
    evidence: EvidenceUpload,
    documents: &mut Vec<NewDocument>,
) -> Result<Evidence, ApiError> {
    match evidence {
        EvidenceUpload::Uri(uri) if uri.trim().is_empty() => Err(ApiError::Invalid(
            "evidence `uri` must not be empty".to_owned(),
        )),
        EvidenceUpload::Uri(uri) => Ok(Evidence::Uri(uri)),
        EvidenceUpload::Document(upload) => {
            let document = upload.into_document(DocumentRole::Evidence)?;
            let reference = document.reference();
            documents.push(document);
            Ok(Evidence::Document(reference))
        }
    }
}
