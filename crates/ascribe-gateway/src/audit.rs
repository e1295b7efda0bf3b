//! `/audit`: the auditor's read-only surface, as JSON under `/audit/v1` and as HTML pages.
//!
//! Every route needs an active auditor key, sent as `Authorization: Bearer <token>` or, so that
//! a browser can open the pages, as the password of HTTP Basic authentication (the user name
//! is ignored). The answers are those of `ascribe_audit`, the same as `ascribe audit` prints;
//! nothing here writes the ledger.

use std::collections::HashMap;

use ascribe_access::Role;
use ascribe_audit::export::{export, Format};
use ascribe_audit::html::{self, Links};
use ascribe_audit::search::InferenceQuery;
use ascribe_audit::{parse_time, AuditError, Window};
use ascribe_ledger::Timestamp;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{self, AUTHORIZATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::extract::PathName;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit", get(index_page))
        .route("/audit/", get(index_page))
        .route("/audit/search", get(search_page))
        .route("/audit/inferences/{id}", get(inference_page))
        .route("/audit/decisions/{reference}", get(decision_page))
        .route("/audit/aliases/{name}", get(alias_page))
        .route("/audit/checkpoints/{id}", get(checkpoint_page))
        .route("/audit/v1/inferences", get(inferences_list))
        .route("/audit/v1/inferences/{id}", get(inference_show))
        .route("/audit/v1/decisions/{reference}", get(decision_show))
        .route("/audit/v1/aliases/{name}", get(alias_show))
        .route("/audit/v1/checkpoints/{id}", get(checkpoint_show))
        .route("/audit/v1/export", get(export_window))
}

/// A request made with an active auditor key.
pub(crate) struct Auditor;

/// A refused audit request: the usual error body, with a Basic challenge added so that a
/// browser asks for the key.
pub(crate) struct AuditRefusal(ApiError);

impl IntoResponse for AuditRefusal {
    fn into_response(self) -> Response {
        let unauthenticated = self.0.status() == StatusCode::UNAUTHORIZED;
        let mut response = self.0.into_response();
        if unauthenticated {
            // One challenge per header: browsers do not read a Basic challenge followed by
            // another scheme in the same header, and then never ask for the key.
            let headers = response.headers_mut();
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Ascribe audit\", charset=\"UTF-8\""),
            );
            headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl FromRequestParts<AppState> for Auditor {
    type Rejection = AuditRefusal;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Auditor, Self::Rejection> {
        let token = audit_token(&parts.headers).map_err(AuditRefusal)?;
        let key = state
            .read(move |backend| ascribe_access::authenticate(backend, &token))
            .await
            .map_err(AuditRefusal)?
            .ok_or(AuditRefusal(ApiError::Unauthenticated(
                "unknown or revoked key",
            )))?;
        tracing::Span::current().record("actor", tracing::field::display(&key.name));
        if key.role != Role::Auditor {
            return Err(AuditRefusal(ApiError::Forbidden(format!(
                "key `{}` has role {}; the audit routes need role auditor",
                key.name, key.role
            ))));
        }
        Ok(Auditor)
    }
}

/// The token of `Bearer <token>`, or the password of `Basic base64(user:password)`.
fn audit_token(headers: &HeaderMap) -> Result<String, ApiError> {
    let missing = ApiError::Unauthenticated(
        "send an auditor key as `authorization: Bearer <token>` or as the Basic password",
    );
    let value = headers.get(AUTHORIZATION).ok_or(missing)?;
    let value = value.to_str().unwrap_or("");
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        if password.is_empty() { user } else { password }.to_owned()
    } else {
        String::new()
    };
    if token.is_empty() {
        return Err(ApiError::Unauthenticated(
            "the `authorization` header must be `Bearer <token>` or Basic with the token as \
             password",
        ));
    }
    Ok(token)
}

/// Runs an audit question on a read connection; its errors become 404 or 422.
async fn answer<T, F>(state: &AppState, question: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(
            &mut dyn ascribe_store::Backend,
            &ascribe_ledger::NoteSigner,
        ) -> Result<T, AuditError>
        + Send
        + 'static,
{
    let signer = state.signer().clone();
    let answered = state
        .read(move |backend| Ok(question(backend, &signer)))
        .await?;
    answered.map_err(|error| match error {
        AuditError::NotFound(message) => ApiError::NotFound(message),
        AuditError::Invalid(message) => ApiError::Invalid(message),
        AuditError::Store(error) => ApiError::from(error),
        AuditError::Io(error) => ApiError::internal("audit answer failed", &error),
    })
}

/// Query parameters, refused with a clear 400 when they do not parse.
struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Params, ApiError> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(params)| Params(params))
            .map_err(|error| ApiError::Malformed(format!("bad query string: {error}")))
    }
}

impl Params {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|value| !value.is_empty()).cloned()
    }

    fn required(&self, name: &str) -> Result<String, ApiError> {
        self.text(name)
            .ok_or_else(|| ApiError::Invalid(format!("the query parameter `{name}` is required")))
    }

    fn window(&self) -> Result<Window, ApiError> {
        Window::parse(&self.required("from")?, &self.required("to")?).map_err(invalid)
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|text| {
                text.parse().map_err(|_| {
                    ApiError::Invalid(format!("`{name}` must be a non-negative integer"))
                })
            })
            .transpose()
    }
}

fn invalid(error: AuditError) -> ApiError {
    ApiError::Invalid(error.to_string())
}

async fn inference_show(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(id): PathName,
) -> Result<Json<ascribe_audit::inference::InferenceAnswer>, ApiError> {
    let answer = answer(&state, move |backend, signer| {
        ascribe_audit::inference::inference(backend, &id, Some(signer))
    })
    .await?;
    Ok(Json(answer))
}

async fn decision_show(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(reference): PathName,
) -> Result<Json<ascribe_audit::inference::DecisionAnswer>, ApiError> {
    let answer = answer(&state, move |backend, signer| {
        ascribe_audit::inference::decision(backend, &reference, Some(signer))
    })
    .await?;
    Ok(Json(answer))
}

/// What `alias_show` answers: an instant, or a window.
#[derive(Serialize)]
#[serde(untagged)]
enum AliasAnswer {
    At(Box<ascribe_audit::alias::AliasAtAnswer>),
    Window(ascribe_audit::alias::AliasWindowAnswer),
}

async fn alias_answer(
    state: &AppState,
    name: String,
    params: &Params,
) -> Result<AliasAnswer, ApiError> {
    if let Some(at) = params.text("at") {
        let at = parse_time(&at).map_err(invalid)?;
        let answer = answer(state, move |backend, _| {
            ascribe_audit::alias::at(backend, &name, at)
        });
        return Ok(AliasAnswer::At(Box::new(answer.await?)));
    }
    if params.text("from").is_none() && params.text("to").is_none() {
        return Err(ApiError::Invalid(
            "give `at=TIME`, or `from=TIME&to=TIME` (RFC 3339)".into(),
        ));
    }
    let window = params.window()?;
    let answer = answer(state, move |backend, _| {
        ascribe_audit::alias::window(backend, &name, window)
    });
    Ok(AliasAnswer::Window(answer.await?))
}

async fn alias_show(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(name): PathName,
    params: Params,
) -> Result<Json<AliasAnswer>, ApiError> {
    Ok(Json(alias_answer(&state, name, &params).await?))
}

async fn checkpoint_show(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(id): PathName,
) -> Result<Json<ascribe_audit::checkpoint::CheckpointAnswer>, ApiError> {
    let answer = answer(&state, move |backend, _| {
        ascribe_audit::checkpoint::checkpoint(backend, &id)
    })
    .await?;
    Ok(Json(answer))
}

async fn inferences_list(
    State(state): State<AppState>,
    _auditor: Auditor,
    params: Params,
) -> Result<Json<ascribe_audit::search::InferencePage>, ApiError> {
    let query = InferenceQuery {
        window: params.window()?,
        caller: params.text("caller"),
        alias: params.text("alias"),
        checkpoint: params.text("checkpoint"),
        with_decision: params
            .text("with_decision")
            .is_some_and(|value| value == "true"),
        after: params.number("after")?,
        limit: params.number("limit")?.unwrap_or(100),
    };
    let page = answer(&state, move |backend, _| {
        ascribe_audit::search::inferences(backend, &query)
    })
    .await?;
    Ok(Json(page))
}

/// A `Write` that hands what is written to the response body, a chunk at a time.
struct ChannelWriter {
    chunks: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// `GET /audit/v1/export?from&to&format`: the package, streamed as it is read. A failure
/// half-way cuts the body short, which a JSONL verifier reports (no `end` line).
async fn export_window(
    State(state): State<AppState>,
    _auditor: Auditor,
    params: Params,
) -> Result<Response, ApiError> {
    let window = params.window()?;
    let format: Format = params
        .text("format")
        .unwrap_or_else(|| "jsonl".into())
        .parse()
        .map_err(ApiError::Invalid)?;
    let (content_type, extension) = match format {
        Format::Jsonl => ("application/jsonl", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Html => ("text/html; charset=utf-8", "html"),
    };
    let file_name = format!(
        "attachment; filename=\"ascribe-{}-{}.{extension}\"",
        window.from.to_string().replace(':', ""),
        window.to.to_string().replace(':', "")
    );

    let (sender, receiver) = mpsc::channel(8);
    let failed = sender.clone();
    tokio::spawn(async move {
        let exported = state
            .read(move |backend| {
                let mut writer = ChannelWriter {
                    chunks: sender,
                    buffer: Vec::with_capacity(CHUNK),
                };
                let result = export(backend, window, format, &mut writer)
                    .and_then(|_| std::io::Write::flush(&mut writer).map_err(AuditError::from));
                Ok(result)
            })
            .await;
        let problem = match exported {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(error) => error.to_string(),
        };
        tracing::warn!(%problem, "export stopped before its end");
        let _ = failed.send(Err(std::io::Error::other(problem))).await;
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&file_name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn index_page(
    State(state): State<AppState>,
    _auditor: Auditor,
) -> Result<Html<String>, ApiError> {
    let aliases = state
        .read(|backend| ascribe_registry::queries::aliases(backend))
        .await?
        .into_iter()
        .map(|alias| (alias.name, alias.deployment))
        .collect::<Vec<_>>();
    Ok(Html(html::index(&aliases, "days=7").into_string()))
}

/// `GET /audit/search?q=`: an inference id opens the inference, anything else the decision.
async fn search_page(_auditor: Auditor, params: Params) -> Result<Redirect, ApiError> {
    let query = params.required("q")?;
    let query = query.trim();
    let encoded = html::path_segment(query);
    if query.starts_with("inf_") {
        return Ok(Redirect::to(&format!("/audit/inferences/{encoded}")));
    }
    Ok(Redirect::to(&format!("/audit/decisions/{encoded}")))
}

async fn inference_page(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(id): PathName,
) -> Result<Html<String>, ApiError> {
    let answer = answer(&state, move |backend, signer| {
        ascribe_audit::inference::inference(backend, &id, Some(signer))
    })
    .await?;
    Ok(Html(
        html::inference_page(&answer, Links::Gateway).into_string(),
    ))
}

async fn decision_page(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(reference): PathName,
) -> Result<Html<String>, ApiError> {
    let answer = answer(&state, move |backend, signer| {
        ascribe_audit::inference::decision(backend, &reference, Some(signer))
    })
    .await?;
    Ok(Html(
        html::decision_page(&answer, Links::Gateway).into_string(),
    ))
}

async fn alias_page(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(name): PathName,
    params: Params,
) -> Result<Html<String>, ApiError> {
    let mut params = params;
    let explicit = params.text("at").is_some() || params.text("from").is_some();
    if !explicit {
        let days = params.number::<u32>("days")?.unwrap_or(7);
        let window = recent_window(&state, &name, days).await?;
        params.0.insert("from".into(), window.from.to_string());
        params.0.insert("to".into(), window.to.to_string());
    }
    let page = match alias_answer(&state, name, &params).await? {
        AliasAnswer::At(answer) => html::alias_at_page(&answer, Links::Gateway),
        AliasAnswer::Window(answer) => {
            let mut colours = html::Colours::default();
            let section = html::alias_section(&answer, &mut colours, Links::Gateway);
            let form = html::window_form(&answer);
            html::page(
                &answer.alias,
                Links::Gateway,
                maud::html! { (form) (section) },
            )
        }
    };
    Ok(Html(page.into_string()))
}

/// The last `days` days up to now, but not before `alias` existed: a window that is mostly
/// "did not exist" hides the periods an auditor came to see.
async fn recent_window(state: &AppState, alias: &str, days: u32) -> Result<Window, ApiError> {
    if days == 0 {
        return Err(ApiError::Invalid("`days` must be at least 1".into()));
    }
    let lookup = alias.to_owned();
    let created = state
        .read(move |backend| ascribe_registry::queries::alias(backend, &lookup))
        .await?
        .and_then(|alias| Timestamp::parse(&alias.created_at).ok());
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let from = Timestamp::from_unix_micros(now.unix_micros() - i64::from(days) * 86_400_000_000);
    let from = created.map_or(from, |created| from.max(created));
    let to = Timestamp::from_unix_micros(now.unix_micros() + 1);
    Window::new(from, to).map_err(invalid)
}

async fn checkpoint_page(
    State(state): State<AppState>,
    _auditor: Auditor,
    PathName(id): PathName,
) -> Result<Html<String>, ApiError> {
    let answer = answer(&state, move |backend, _| {
        ascribe_audit::checkpoint::checkpoint(backend, &id)
    })
    .await?;
    Ok(Html(
        html::checkpoint_page(&answer, Links::Gateway).into_string(),
    ))
}
