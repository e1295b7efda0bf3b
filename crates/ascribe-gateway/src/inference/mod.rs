//! The inference routes: OpenAI's and Anthropic's APIs, with provenance recorded before the
//! answer is released.
//!
//! The request path of one call, each step a function below or in a sibling module:
//!
//! 1. [`caller::presented_token`]: a caller key, as either SDK sends it;
//! 2. `ascribe_dialects::parse_request`: the requested `model`, `stream`, the decision
//!    reference ([`caller::decision_reference`]);
//! 3. [`admit`]: the key checked and the alias (or checkpoint id) resolved to a deployment,
//!    in one read of the registry at this instant ([`route::lookup`]);
//! 4. [`upstream::send`]: the pinned upstream model, the gateway's own credentials;
//! 5. the served identity, from the whole body or the first events of a stream
//!    ([`stream`]), classified against the deployment's expectation;
//! 6. [`record::Call::write`]: the inference entry, durable before the answer leaves;
//! 7. the upstream's answer, unchanged, with `Ascribe-Inference-Id`, `Ascribe-Checkpoint`
//!    and `Ascribe-Receipt`.
//!
//! Along the way a [`Progress`] collects what the metrics count once the answer is released,
//! and the call's OpenTelemetry span (`crate::telemetry`) collects what the ledger recorded.
//!
//! **Invariant:** no byte of an answer reaches the caller before the entry that records it
//! is durable; when the ledger cannot be written the caller gets a 503 and nothing else.

mod caller;
mod error;
mod models;
mod record;
mod route;
mod stream;
mod upstream;

use std::time::{Duration, Instant};

use ascribe_access::{KeyRecord, Role};
use ascribe_dialects::{
    classify, identity_from_response, parse_request, upstream_target, Api, ErrorKind,
    InferenceRequest, ServedIdentity, Upstream,
};
use ascribe_inference::{new_inference_id, Timings};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest as _, Sha256};

use self::error::InferenceError;
use self::record::{millis, Call, Outcome, Verdict};
use self::upstream::UpstreamFailure;
use crate::metrics::{Refusal, RequestLabels};
use crate::state::AppState;
use crate::telemetry::{InferenceSpan, SpanStart};

/// The inference routes, under `/v1`.
pub(crate) fn routes() -> Router<AppState> {
    let not_post = |uri| models::method_not_allowed(uri, "POST");
    let not_get = |uri| models::method_not_allowed(uri, "GET");
    Router::new()
        .route(
            "/chat/completions",
            post(chat_completions).fallback(not_post),
        )
        .route("/responses", post(responses).fallback(not_post))
        .route("/embeddings", post(embeddings).fallback(not_post))
        .route("/messages", post(messages).fallback(not_post))
        .route("/models", get(models::list).fallback(not_get))
        .route("/models/{model}", get(models::retrieve).fallback(not_get))
        .route("/ascribe/receipts/{inference_id}", get(models::receipts))
        // Routes of the providers' APIs that the gateway does not serve get a 404 a caller's
        // SDK can read, rather than the admin API's.
        .fallback(models::unsupported)
}

async fn chat_completions(
    state: State<AppState>,
    headers: HeaderMap,
    body: CallerBody,
) -> Response {
    infer(state, Api::ChatCompletions, headers, body).await
}

async fn responses(state: State<AppState>, headers: HeaderMap, body: CallerBody) -> Response {
    infer(state, Api::Responses, headers, body).await
}

async fn embeddings(state: State<AppState>, headers: HeaderMap, body: CallerBody) -> Response {
    infer(state, Api::Embeddings, headers, body).await
}

async fn messages(state: State<AppState>, headers: HeaderMap, body: CallerBody) -> Response {
    infer(state, Api::Messages, headers, body).await
}

/// The request body as the handlers take it: a body over the limit (or one that could not
/// be read) is refused in the caller's dialect, not in axum's plain text.
type CallerBody = Result<Bytes, BytesRejection>;

async fn infer(
    State(state): State<AppState>,
    api: Api,
    headers: HeaderMap,
    body: CallerBody,
) -> Response {
    let arrived = Instant::now();
    let mut progress = Progress::default();
    let outcome = match body {
        Ok(body) => call(&state, api, &headers, &body, &mut progress).await,
        Err(rejection) => Err(body_refused(&state, api, &rejection)),
    };
    let response = match outcome {
        Ok(response) => response,
        Err(error) => {
            progress.refusal = error.refusal();
            error.into_response()
        }
    };
    progress.count(&state, api, arrived, &response);
    response
}

/// The error for a body the gateway did not read: over the limit, or cut off.
fn body_refused(state: &AppState, api: Api, rejection: &BytesRejection) -> InferenceError {
    if rejection.status() != StatusCode::PAYLOAD_TOO_LARGE {
        let message = "the request body could not be read";
        return InferenceError::new(api, ErrorKind::InvalidRequest, message);
    }
    let message = format!(
        "the request body is larger than this gateway accepts ({} bytes, its \
         limits.max_request_bytes)",
        state.config().max_request_body
    );
    InferenceError::new(api, ErrorKind::PayloadTooLarge, message)
}

/// What the metrics learn about one call as it goes through the steps.
#[derive(Default)]
pub(crate) struct Progress {
    /// The alias the name resolved as.
    alias: Option<String>,
    /// The deployment called.
    deployment: Option<String>,
    /// Time spent waiting on the upstream before the answer could be released.
    upstream_wait: Option<Duration>,
    /// Set when the ledger could not record (or route) the call.
    refusal: Option<Refusal>,
}

impl Progress {
    /// Counts the answer about to be released.
    fn count(self, state: &AppState, api: Api, arrived: Instant, response: &Response) {
        let metrics = state.metrics();
        let dialect = dialect_name(api);
        metrics.request_answered(RequestLabels {
            alias: self.alias.unwrap_or_default(),
            deployment: self.deployment.clone().unwrap_or_default(),
            dialect: dialect.to_owned(),
            status: response.status().as_u16(),
        });
        if response.headers().contains_key("ascribe-inference-id") {
            metrics.answer_released();
        }
        if let Some(refusal) = self.refusal {
            metrics.answer_refused(refusal);
        }
        if let (Some(waited), Some(deployment)) = (self.upstream_wait, &self.deployment) {
            metrics.upstream_latency(deployment, waited);
            metrics.added_latency(dialect, arrived.elapsed().saturating_sub(waited));
        }
    }
}

/// The dialect of an endpoint, as the metrics label it.
fn dialect_name(api: Api) -> &'static str {
    match api {
        Api::Messages => "anthropic",
        _ => "openai",
    }
}

/// Steps 1 to 4, then the whole-answer or streaming path.
async fn call(
    state: &AppState,
    api: Api,
    headers: &HeaderMap,
    body: &[u8],
    progress: &mut Progress,
) -> Result<Response, InferenceError> {
    let Admitted {
        caller,
        request,
        decision,
        route,
    } = admit(state, api, headers, body).await?;
    tracing::Span::current().record("alias", tracing::field::display(request.model()));
    progress.alias = route.alias.as_ref().map(|alias| alias.name.clone());
    progress.deployment = Some(route.deployment.name.clone());

    let deployment = &route.deployment;
    let api_key = provider_key(api, deployment.api_key_env.as_deref())?;
    let (base_url, api_version) = match route.upstream {
        Upstream::AzureOpenai => azure_base_and_version(&deployment.base_url),
        Upstream::Anthropic => {
            let version = headers
                .get("anthropic-version")
                .and_then(|value| value.to_str().ok());
            (deployment.base_url.as_str(), version)
        }
        _ => (deployment.base_url.as_str(), None),
    };
    let mut target = upstream_target(
        api,
        route.upstream,
        base_url,
        &deployment.upstream_model,
        api_key.as_deref(),
        api_version,
    )
    .map_err(|error| {
        tracing::warn!(deployment = %deployment.name, %error, "deployment cannot be addressed");
        InferenceError::new(
            api,
            ErrorKind::UpstreamError,
            "the deployment cannot be reached",
        )
    })?;
    let span = InferenceSpan::start(&SpanStart {
        headers,
        api,
        requested_model: request.model(),
        upstream: route.upstream,
        url: &target.url,
    });
    span.inject(&mut target.headers);

    let full_retention = route.deployment.retention == ascribe_registry::Retention::Full;
    let retained_request = full_retention.then(|| body.to_vec());
    let call = Call {
        inference_id: new_inference_id(),
        api,
        caller: caller.name,
        decision,
        requested_model: request.model().to_owned(),
        stream: request.stream(),
        request_sha256: hex::encode(Sha256::digest(body)),
        route,
        started: Instant::now(),
        retained_request,
        span,
    };
    let upstream_body = request.upstream_body(&call.route.deployment.upstream_model);
    let deadline = upstream::Deadline::after(call.started, state.config().upstream_deadline);
    match upstream::send(state, &target, upstream_body, deadline).await {
        Err(failure) => {
            progress.upstream_wait = Some(call.started.elapsed());
            Err(record_failure(state, &call, &failure).await)
        }
        Ok(response) if call.stream && response.status().is_success() => {
            stream::relay(state, call, response, deadline, progress).await
        }
        Ok(response) => whole_answer(state, call, response, deadline, progress).await,
    }
}

/// A call that may go upstream: who calls, what they asked, where it goes.
struct Admitted {
    caller: KeyRecord,
    request: InferenceRequest,
    decision: Option<String>,
    route: route::Route,
}

/// Steps 1 to 3. The key and the route are read in one transaction, so the call is checked
/// and routed against one snapshot of the registry, in one trip to the database. Refusals
/// come in the order of the steps: no key or an unknown one first, then a malformed request,
/// then an unknown model.
async fn admit(
    state: &AppState,
    api: Api,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Admitted, InferenceError> {
    let token = caller::presented_token(api, headers)?;
    let asked = parse_request(api, body)
        .map_err(|error| InferenceError::new(api, error.caller_kind(), error.to_string()))
        .and_then(|request| {
            let decision = caller::decision_reference(api, headers, request.decision_reference())?;
            Ok((request, decision))
        });
    let model = asked
        .as_ref()
        .ok()
        .map(|(request, _)| request.model().to_owned());

    let (key, found) = state
        .read(move |backend| {
            let mut read = (None, None);
            backend.read(&mut |tx| {
                let key = ascribe_access::find_active(tx, &token)?;
                let is_caller = key.as_ref().is_some_and(|key| key.role == Role::Caller);
                let found = match (&model, is_caller) {
                    (Some(model), true) => route::lookup(tx, model)?,
                    _ => None,
                };
                read = (key, found);
                Ok(())
            })?;
            Ok(read)
        })
        .await
        .map_err(|_| InferenceError::unreadable(api))?;

    let caller = caller::check_key(api, key)?;
    let (request, decision) = asked?;
    let route = route::route(api, request.model(), found)?;
    Ok(Admitted {
        caller,
        request,
        decision,
        route,
    })
}

/// Azure's API version used when a deployment's base URL names none.
const AZURE_API_VERSION: &str = "2024-10-21";

/// An Azure deployment's base URL is the resource root, optionally with
/// `?api-version=...`; returns the root and the version to call.
fn azure_base_and_version(base_url: &str) -> (&str, Option<&str>) {
    let (root, query) = base_url.split_once('?').unwrap_or((base_url, ""));
    let version = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("api-version="))
        .filter(|version| !version.is_empty())
        .unwrap_or(AZURE_API_VERSION);
    (root, Some(version))
}

/// The provider key from the gateway's environment; callers never send one.
fn provider_key(api: Api, variable: Option<&str>) -> Result<Option<String>, InferenceError> {
    let Some(variable) = variable else {
        return Ok(None);
    };
    match std::env::var(variable) {
        Ok(key) => Ok(Some(key)),
        Err(_) => {
            tracing::error!(
                variable,
                "the deployment's provider key variable is not set"
            );
            Err(InferenceError::new(
                api,
                ErrorKind::UpstreamError,
                "the gateway has no credentials for this deployment",
            ))
        }
    }
}

/// Records a call whose upstream gave no answer, and the error the caller gets.
async fn record_failure(
    state: &AppState,
    call: &Call,
    failure: &UpstreamFailure,
) -> InferenceError {
    let kind = match failure {
        UpstreamFailure::Timeout | UpstreamFailure::Deadline(_) => ErrorKind::UpstreamTimeout,
        UpstreamFailure::Unreachable(_) | UpstreamFailure::TooLarge(_) => ErrorKind::UpstreamError,
    };
    let (status, _) = ascribe_dialects::error_body(call.api, kind, "");
    call.span.failed(failure.outcome(), &failure.describe());
    let outcome = Outcome {
        status,
        outcome: failure.outcome(),
        response_sha256: None,
        usage: None,
        error: Some(failure.describe()),
        upstream_ms: None,
        response_body: None,
    };
    let served = ServedIdentity::default();
    let verdict = Verdict::nothing_served();
    let recording = call.record(&served, &verdict, outcome);
    let (inference_id, failure_text) = (&call.inference_id, failure.describe());
    tracing::warn!(%inference_id, failure = %failure_text, "upstream failed");
    match call.write(state, recording, &served, &verdict).await {
        Ok(_) => {
            InferenceError::new(call.api, kind, failure.describe()).recorded(&call.inference_id)
        }
        Err(unrecorded) => unrecorded,
    }
}

/// A non-streamed answer: read it whole, read its identity, record, release.
async fn whole_answer(
    state: &AppState,
    call: Call,
    response: reqwest::Response,
    deadline: upstream::Deadline,
    progress: &mut Progress,
) -> Result<Response, InferenceError> {
    let status = response.status().as_u16();
    let headers = upstream::header_pairs(response.headers());
    let first_byte = millis(call.started.elapsed());
    let config = state.config();
    let body = match upstream::read_body(
        response,
        config.max_upstream_body,
        config.upstream_timeout,
        deadline,
    )
    .await
    {
        Ok(body) => body,
        Err(failure) => {
            progress.upstream_wait = Some(call.started.elapsed());
            return Err(record_failure(state, &call, &failure).await);
        }
    };
    progress.upstream_wait = Some(call.started.elapsed());
    let timings = Timings {
        first_byte,
        total: Some(millis(call.started.elapsed())),
    };

    let is_json = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let success = (200..300).contains(&status);
    let served = identity_from_response(call.route.upstream, &headers, &body);
    let verdict = match (success, &is_json) {
        (true, Some(_)) => verdict_of(&call, &served),
        _ => Verdict::nothing_served(),
    };
    let rejected = verdict.is_mismatch() && rejects_mismatch(&call);
    let (caller_status, outcome, error) = match (&is_json, success, rejected) {
        (None, _, _) => (
            502,
            "upstream_error",
            Some(format!(
                "upstream answered {status} with a body that is not JSON"
            )),
        ),
        (Some(_), true, true) => (
            502,
            "rejected_mismatch",
            Some("served model rejected by the alias's policy".to_owned()),
        ),
        (Some(_), true, false) => (status, "answered", None),
        (Some(_), false, _) => (
            status,
            "upstream_error",
            Some(format!("upstream answered {status}")),
        ),
    };
    if let Some(error) = &error {
        let error_type = match (&is_json, success) {
            (Some(_), false) => status.to_string(),
            _ => outcome.to_owned(),
        };
        call.span.failed(&error_type, error);
    }
    let usage = is_json.as_ref().and_then(|json| json.get("usage")).cloned();
    let outcome = Outcome {
        status: caller_status,
        outcome,
        response_sha256: Some(hex::encode(Sha256::digest(&body))),
        usage,
        error,
        upstream_ms: Some(timings),
        response_body: call.retained_request.is_some().then(|| body.clone()),
    };
    let recording = call.record(&served, &verdict, outcome);
    let recorded = call.write(state, recording, &served, &verdict).await?;

    if is_json.is_none() {
        let message = "the upstream sent an answer the gateway cannot read";
        return Err(
            InferenceError::new(call.api, ErrorKind::UpstreamError, message)
                .recorded(&call.inference_id),
        );
    }
    if rejected {
        return Err(identity_rejected(&call, &served));
    }
    let body = match answer_model_rewrite(&call) {
        Some(requested) if success => ascribe_dialects::rewrite_served_model(&body, requested),
        _ => body,
    };
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
        .into_response();
    response.headers_mut().extend(call.headers(&recorded));
    copy_headers(&headers, response.headers_mut(), PASSED_HEADERS);
    Ok(response)
}

/// The name to put in answers' `model` field instead of the served one, when the alias says
/// so; the record keeps the served model either way.
fn answer_model_rewrite(call: &Call) -> Option<&str> {
    let alias = call.route.alias.as_ref()?;
    (alias.answer_model == ascribe_registry::AnswerModel::Requested)
        .then_some(call.requested_model.as_str())
}

/// How the served identity compares with the deployment's expectation.
///
/// A self-hosted (`openai-compatible`) server that answers with exactly the model name it was
/// sent tells nothing about its weights: llama.cpp-based servers echo the request, vLLM
/// answers its operator-chosen label. Such an answer is `undisclosed`, never `match`; the
/// identity probe is what watches those deployments.
fn verdict_of(call: &Call, served: &ServedIdentity) -> Verdict {
    let deployment = &call.route.deployment;
    let echoed = served.model.as_deref() == Some(deployment.upstream_model.as_str());
    if call.route.upstream == Upstream::OpenaiCompatible && echoed {
        return Verdict::of(ascribe_dialects::IdentityMatch::Undisclosed);
    }
    Verdict::of(classify(
        &deployment.expect_served,
        &deployment.upstream_model,
        served,
    ))
}

/// The error a caller gets when the alias's policy rejects the served model.
fn identity_rejected(call: &Call, served: &ServedIdentity) -> InferenceError {
    let message = format!(
        "the deployment served `{}` where `{}` was expected, and this alias rejects a mismatch",
        served.model.as_deref().unwrap_or("?"),
        call.route.deployment.expect_served
    );
    InferenceError::new(call.api, ErrorKind::IdentityRejected, message).recorded(&call.inference_id)
}

/// Whether the alias called says a served-model mismatch is refused rather than flagged.
fn rejects_mismatch(call: &Call) -> bool {
    call.route
        .alias
        .as_ref()
        .is_some_and(|alias| alias.on_mismatch == ascribe_registry::MismatchPolicy::Reject)
}

/// Upstream headers passed on to the caller: the body's type, when to retry, and the
/// provider's request id (SDKs show it as the request id). Everything else is dropped.
pub(crate) const PASSED_HEADERS: &[&str] =
    &["content-type", "retry-after", "x-request-id", "request-id"];

/// Copies the named upstream headers onto an answer.
pub(crate) fn copy_headers(from: &[(String, String)], to: &mut HeaderMap, names: &[&str]) {
    for (name, value) in from {
        if !names.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            to.insert(name, value);
        }
    }
}
