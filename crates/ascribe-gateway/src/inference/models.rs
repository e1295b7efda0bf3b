//! `GET /v1/models` (the aliases a caller may name) and `GET /v1/ascribe/receipts/{id}`.

use ascribe_dialects::{Api, ErrorKind};
use ascribe_inference::Receipt;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::caller;
use super::error::InferenceError;
use crate::state::AppState;

/// The aliases, in OpenAI's model-list shape.
pub(crate) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let api = Api::ChatCompletions;
    if let Err(error) = caller::authenticate(&state, api, &headers).await {
        return error.into_response();
    }
    let aliases = state.read(ascribe_registry::queries::aliases).await;
    let Ok(aliases) = aliases else {
        return InferenceError::unrecorded(api).into_response();
    };
    let data: Vec<_> = aliases
        .iter()
        .map(|alias| json!({"id": alias.name, "object": "model", "created": 0, "owned_by": "ascribe"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// The receipts of an inference: over its record and, for a finished stream, over its
/// completion. Only the caller that made the inference may fetch them.
pub(crate) async fn receipts(
    State(state): State<AppState>,
    Path(inference_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let api = Api::ChatCompletions;
    let caller = match caller::authenticate(&state, api, &headers).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let id = inference_id.clone();
    let view = state
        .read(move |backend| ascribe_inference::queries::inference(backend, &id))
        .await;
    let view = match view {
        Ok(Some(view)) if view.record.caller == caller.name => view,
        Ok(_) => {
            let message = format!("no inference `{inference_id}` made with this key");
            return InferenceError::new(api, ErrorKind::NotFound, message).into_response();
        }
        Err(_) => return InferenceError::unrecorded(api).into_response(),
    };
    let signer = state.signer();
    let checkpoint = &view.record.checkpoint;
    let mut covered = vec![("inference.recorded", view.seq, view.leaf_hash)];
    if let Some(completion) = &view.completion {
        covered.push(("inference.completed", completion.seq, completion.leaf_hash));
    }
    let mut receipts = Vec::new();
    for (kind, seq, leaf_hash) in covered {
        match Receipt::new(signer.name(), &inference_id, seq, &leaf_hash, checkpoint).sign(signer) {
            Ok(token) => receipts.push(json!({"entry": kind, "seq": seq, "receipt": token})),
            Err(_) => return InferenceError::unrecorded(api).into_response(),
        }
    }
    Json(json!({"inference_id": inference_id, "receipts": receipts})).into_response()
}
