//! `GET /v1/models` (the aliases a caller may name) and `GET /v1/ascribe/receipts/{id}`.

use ascribe_dialects::{Api, ErrorKind};
use ascribe_inference::Receipt;
use axum::extract::rejection::PathRejection;
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
        return InferenceError::unreadable(api).into_response();
    };
    let data: Vec<_> = aliases
        .iter()
        .map(|alias| model_object(&alias.name))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// One alias, in OpenAI's model shape; an unknown name is a 404 the SDK reads.
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    model: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let api = Api::ChatCompletions;
    if let Err(error) = caller::authenticate(&state, api, &headers).await {
        return error.into_response();
    }
    let Ok(Path(model)) = model else {
        let message = "the model name in the path is not percent-encoded UTF-8";
        return InferenceError::new(api, ErrorKind::InvalidRequest, message).into_response();
    };
    let name = model.clone();
    let found = match super::route::may_be_registered(&model) {
        true => {
            state
                .read(move |backend| ascribe_registry::queries::alias(backend, &name))
                .await
        }
        false => Ok(None),
    };
    match found {
        Ok(Some(alias)) => Json(model_object(&alias.name)).into_response(),
        Ok(None) => {
            let message = format!("the model `{model}` does not exist");
            InferenceError::new(api, ErrorKind::NotFound, message).into_response()
        }
        Err(_) => InferenceError::unreadable(api).into_response(),
    }
}

fn model_object(name: &str) -> serde_json::Value {
    json!({"id": name, "object": "model", "created": 0, "owned_by": "ascribe"})
}

/// Any other route under `/v1`: a 404 in the shape of the API the path belongs to.
pub(crate) async fn unsupported(uri: axum::http::Uri) -> Response {
    // Inside the `/v1` nest the path arrives without its prefix.
    let path = uri.path().strip_prefix("/v1").unwrap_or(uri.path());
    let api = match path.starts_with("/messages") {
        true => Api::Messages,
        false => Api::ChatCompletions,
    };
    let message = format!("the gateway does not serve `/v1{path}`; see docs/gateway.md");
    InferenceError::new(api, ErrorKind::NotFound, message).into_response()
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
        Err(_) => return InferenceError::unreadable(api).into_response(),
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
            Err(_) => return InferenceError::unreadable(api).into_response(),
        }
    }
    Json(json!({"inference_id": inference_id, "receipts": receipts})).into_response()
}

/// A method an inference route does not take: a 405 in the shape of the API the path
/// belongs to, naming the method it does take.
pub(crate) async fn method_not_allowed(uri: axum::http::Uri, allowed: &'static str) -> Response {
    let path = uri.path().strip_prefix("/v1").unwrap_or(uri.path());
    let api = match path.starts_with("/messages") {
        true => Api::Messages,
        false => Api::ChatCompletions,
    };
    let message = format!("method not allowed on `/v1{path}`; it takes {allowed}");
    let mut response = InferenceError::new(api, ErrorKind::InvalidRequest, message).into_response();
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static(allowed),
    );
    response
}
