//! `/admin/v1`: the registry's admin API, one module per resource.
//!
//! Every handler takes [`Admin`](crate::auth::Admin) first, so no route here runs without an
//! active admin key, and records that key's name as the actor. A change is answered only once
//! its entry is durable; its documents are stored by entries appended just before it.

mod aliases;
mod checkpoints;
mod deployments;

use ascribe_registry::changes::{store_document, NewDocument};
use ascribe_registry::{queries, DocumentRole};
use ascribe_store::{AppendError, AppendedEntry, PendingEntry};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures_util::future::join_all;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/checkpoints",
            post(checkpoints::checkpoints_create).get(checkpoints::checkpoints_list),
        )
        .route("/checkpoints/{id}", get(checkpoints::checkpoints_show))
        .route(
            "/deployments",
            post(deployments::deployments_create).get(deployments::deployments_list),
        )
        .route("/deployments/{name}", get(deployments::deployments_show))
        .route(
            "/aliases",
            post(aliases::aliases_create).get(aliases::aliases_list),
        )
        .route("/aliases/{name}", get(aliases::aliases_show))
        .route("/aliases/{name}/rotate", post(aliases::aliases_rotate))
        .route("/aliases/{name}/rollback", post(aliases::aliases_rollback))
}

/// A document sent inline: a card, an evaluation profile, a lineage record or evidence.
#[derive(Deserialize)]
struct DocumentUpload {
    /// The file name it is stored under.
    name: String,
    /// Its bytes, standard base64 with padding.
    content_base64: String,
}

impl DocumentUpload {
    /// Decodes and checks the document; a bad one is refused before anything is written.
    fn into_document(self, role: DocumentRole) -> Result<NewDocument, ApiError> {
        let content = BASE64.decode(self.content_base64.as_bytes()).map_err(|_| {
            ApiError::Invalid(format!(
                "`content_base64` of {role} `{}` is not valid base64",
                self.name
            ))
        })?;
        let document = NewDocument {
            role,
            name: self.name,
            content,
        };
        document.validate().map_err(ApiError::Invalid)?;
        Ok(document)
    }
}

/// Appends `change` after entries storing those of `documents` not stored yet, and answers
/// with the change's outcome.
///
/// All entries are handed to the writer before any is awaited, so they are numbered in this
/// order and usually share one transaction. A document refused by its check was stored by a
/// concurrent request in the meantime (the documents were validated already), which serves
/// as well; a document that could not be written fails the request.
async fn append_change(
    state: &AppState,
    actor: &str,
    documents: Vec<NewDocument>,
    change: PendingEntry,
) -> Result<AppendedEntry, ApiError> {
    let missing = missing_documents(state, documents).await?;
    let mut entries: Vec<PendingEntry> = missing
        .into_iter()
        .map(|document| store_document(document, actor))
        .collect();
    entries.push(change);

    let mut outcomes = join_all(entries.into_iter().map(|entry| state.append(entry))).await;
    let change_outcome = outcomes.pop().unwrap_or(Err(AppendError::Stopped));
    for outcome in outcomes {
        match outcome {
            Ok(appended) => {
                let digest = &appended.entry.body["digest"];
                tracing::info!(seq = appended.entry.seq, %digest, "document stored");
            }
            Err(AppendError::Refused(reason)) => tracing::debug!(%reason, "document not stored"),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(change_outcome?)
}

/// The documents whose digest is not stored yet, each once.
async fn missing_documents(
    state: &AppState,
    mut documents: Vec<NewDocument>,
) -> Result<Vec<NewDocument>, ApiError> {
    let mut digests = Vec::new();
    documents.retain(|document| {
        let digest = document.digest();
        let first = !digests.contains(&digest);
        if first {
            digests.push(digest);
        }
        first
    });
    if documents.is_empty() {
        return Ok(documents);
    }
    let stored = state
        .read(move |backend| {
            ascribe_store::query::read(backend, |tx| {
                digests
                    .iter()
                    .map(|digest| queries::document_exists(tx, digest))
                    .collect::<Result<Vec<bool>, _>>()
            })
        })
        .await?;
    Ok(documents
        .into_iter()
        .zip(stored)
        .filter_map(|(document, stored)| (!stored).then_some(document))
        .collect())
}

/// Records the alias a request is about in its span.
fn record_alias(alias: &str) {
    tracing::Span::current().record("alias", tracing::field::display(alias));
}
