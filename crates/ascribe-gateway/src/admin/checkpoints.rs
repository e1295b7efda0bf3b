//! `/admin/v1/checkpoints`: register, list and show checkpoints.

use ascribe_registry::changes::{register_checkpoint, NewCheckpoint, NewDocument};
use ascribe_registry::{queries, CheckpointRecord, DocumentRole, Segment};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{append_change, DocumentUpload};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathName};
use crate::state::AppState;

/// `POST /admin/v1/checkpoints`: a hosted snapshot (`provider` and `snapshot`) or weights
/// (`manifest`, as `ascribe hash --json` prints it), with optional documents.
#[derive(Deserialize)]
pub(crate) struct CheckpointCreate {
    provider: Option<String>,
    snapshot: Option<String>,
    manifest: Option<Value>,
    card: Option<DocumentUpload>,
    evaluation: Option<DocumentUpload>,
    lineage: Option<DocumentUpload>,
    note: Option<String>,
}

/// A checkpoint registered: its id and the `seq` of its entry.
#[derive(Serialize)]
pub(crate) struct CheckpointRegistered {
    checkpoint: String,
    seq: u64,
}

/// Every checkpoint, oldest first.
#[derive(Serialize)]
pub(crate) struct CheckpointList {
    checkpoints: Vec<CheckpointRecord>,
}

/// One checkpoint, and where and when it was in production.
#[derive(Serialize)]
pub(crate) struct CheckpointShown {
    checkpoint: CheckpointRecord,
    production: Vec<Segment>,
}

pub(crate) async fn checkpoints_create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<CheckpointCreate>,
) -> Result<(StatusCode, Json<CheckpointRegistered>), ApiError> {
    let (checkpoint, documents) = body.into_change()?;
    let id = checkpoint.id().map_err(ApiError::Invalid)?;
    let change = register_checkpoint(checkpoint, admin.actor());
    let appended = append_change(&state, admin.actor(), documents, change).await?;
    let seq = appended.entry.seq;
    tracing::info!(checkpoint = %id, seq, "checkpoint registered");
    let registered = CheckpointRegistered {
        checkpoint: id,
        seq,
    };
    Ok((StatusCode::CREATED, Json(registered)))
}

pub(crate) async fn checkpoints_list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<CheckpointList>, ApiError> {
    let checkpoints = state.read(queries::checkpoints).await?;
    Ok(Json(CheckpointList { checkpoints }))
}

pub(crate) async fn checkpoints_show(
    State(state): State<AppState>,
    _admin: Admin,
    PathName(id): PathName,
) -> Result<Json<CheckpointShown>, ApiError> {
    let lookup = id.clone();
    let found = state
        .read(move |backend| {
            let Some(checkpoint) = queries::checkpoint(backend, &lookup)? else {
                return Ok(None);
            };
            let production = queries::segments_for_checkpoint(backend, &lookup)?;
            Ok(Some(CheckpointShown {
                checkpoint,
                production,
            }))
        })
        .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no checkpoint {id}")))
}

impl CheckpointCreate {
    /// The checkpoint and the documents to store with it, decoded and checked.
    fn into_change(self) -> Result<(NewCheckpoint, Vec<NewDocument>), ApiError> {
        let hosted = match (self.provider, self.snapshot) {
            (Some(provider), Some(snapshot)) => Some((provider, snapshot)),
            (None, None) => None,
            _ => {
                return Err(ApiError::Invalid(
                    "a hosted checkpoint needs both `provider` and `snapshot`".to_owned(),
                ))
            }
        };
        let mut checkpoint = NewCheckpoint {
            hosted,
            manifest: self.manifest,
            note: self.note,
            ..NewCheckpoint::default()
        };
        let mut documents = Vec::new();
        let uploads = [
            (DocumentRole::Card, self.card),
            (DocumentRole::Evaluation, self.evaluation),
            (DocumentRole::Lineage, self.lineage),
        ];
        for (role, upload) in uploads {
            let Some(upload) = upload else { continue };
            let document = upload.into_document(role)?;
            let reference = Some(document.reference());
            match role {
                DocumentRole::Card => checkpoint.card = reference,
                DocumentRole::Evaluation => checkpoint.evaluation = reference,
                _ => checkpoint.lineage = reference,
            }
            documents.push(document);
        }
        Ok((checkpoint, documents))
    }
}
