//! `/admin/v1/deployments`: register, list and show deployments.

use ascribe_registry::changes::{register_deployment, NewDeployment};
use ascribe_registry::{queries, DeploymentRecord};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::append_change;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathName};
use crate::state::AppState;

/// `POST /admin/v1/deployments`: the fields of `NewDeployment`, with `dialect` and `retention`
/// as words.
#[derive(Deserialize)]
pub(crate) struct DeploymentCreate {
    name: String,
    checkpoint: String,
    dialect: String,
    base_url: String,
    upstream_model: String,
    expect_served: Option<String>,
    api_key_env: Option<String>,
    #[serde(default)]
    allow_moving_name: bool,
    retention: Option<String>,
}

/// A deployment registered: its name and the `seq` of its entry.
#[derive(Serialize)]
pub(crate) struct DeploymentRegistered {
    deployment: String,
    seq: u64,
}

/// Every deployment, oldest first.
#[derive(Serialize)]
pub(crate) struct DeploymentList {
    deployments: Vec<DeploymentRecord>,
}

/// One deployment.
#[derive(Serialize)]
pub(crate) struct DeploymentShown {
    deployment: DeploymentRecord,
}

pub(crate) async fn deployments_create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<DeploymentCreate>,
) -> Result<(StatusCode, Json<DeploymentRegistered>), ApiError> {
    let deployment = body.into_change()?;
    let name = deployment.name.clone();
    let change = register_deployment(deployment, admin.actor());
    let appended = append_change(&state, admin.actor(), Vec::new(), change).await?;
    let seq = appended.entry.seq;
    tracing::info!(deployment = %name, seq, "deployment registered");
    let registered = DeploymentRegistered {
        deployment: name,
        seq,
    };
    Ok((StatusCode::CREATED, Json(registered)))
}

pub(crate) async fn deployments_list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<DeploymentList>, ApiError> {
    let deployments = state.read(queries::deployments).await?;
    Ok(Json(DeploymentList { deployments }))
}

pub(crate) async fn deployments_show(
    State(state): State<AppState>,
    _admin: Admin,
    PathName(name): PathName,
) -> Result<Json<DeploymentShown>, ApiError> {
    let lookup = name.clone();
    let found = state
        .read(move |backend| queries::deployment(backend, &lookup))
        .await?;
    found
        .map(|deployment| Json(DeploymentShown { deployment }))
        .ok_or_else(|| ApiError::NotFound(format!("no deployment `{name}`")))
}

impl DeploymentCreate {
    fn into_change(self) -> Result<NewDeployment, ApiError> {
        let retention = self.retention.as_deref().unwrap_or("digest");
        Ok(NewDeployment {
            name: self.name,
            checkpoint: self.checkpoint,
            dialect: self.dialect.parse().map_err(ApiError::Invalid)?,
            base_url: self.base_url,
            upstream_model: self.upstream_model,
            expect_served: self.expect_served,
            api_key_env: self.api_key_env,
            allow_moving_name: self.allow_moving_name,
            retention: retention.parse().map_err(ApiError::Invalid)?,
        })
    }
}
