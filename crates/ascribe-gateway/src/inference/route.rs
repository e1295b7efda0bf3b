//! Resolving the requested `model` to a deployment at this instant.

use ascribe_dialects::{Api, ErrorKind, Upstream};
use ascribe_registry::{queries, AliasRecord, DeploymentRecord};

use super::error::InferenceError;
use crate::state::AppState;

/// Where a call goes.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The alias the requested name resolved as; `None` when a checkpoint id was asked for.
    pub(crate) alias: Option<AliasRecord>,
    /// The deployment called.
    pub(crate) deployment: DeploymentRecord,
    /// How the deployment's upstream speaks.
    pub(crate) upstream: Upstream,
}

/// Resolves `model` as an alias, else as a checkpoint id served by some deployment; an
/// unknown name is a 404 in the caller's dialect.
pub(crate) async fn resolve(
    state: &AppState,
    api: Api,
    model: &str,
) -> Result<Route, InferenceError> {
    let name = model.to_owned();
    let found = if !may_be_registered(model) {
        None
    } else {
        state
            .read(move |backend| {
                if let Some(alias) = queries::alias(backend, &name)? {
                    let deployment = queries::deployment(backend, &alias.deployment)?;
                    return Ok(deployment.map(|deployment| (Some(alias), deployment)));
                }
                let serving = queries::deployments(backend)?
                    .into_iter()
                    .find(|deployment| deployment.checkpoint == name);
                Ok(serving.map(|deployment| (None, deployment)))
            })
            .await
            .map_err(|_| InferenceError::unreadable(api))?
    };
    let Some((alias, deployment)) = found else {
        return Err(InferenceError::new(
            api,
            ErrorKind::NotFound,
            format!(
                "the model `{model}` does not exist: it is neither an alias nor a served \
                 checkpoint"
            ),
        ));
    };
    let upstream: Upstream = deployment.dialect.to_string().parse().map_err(|_| {
        InferenceError::new(
            api,
            ErrorKind::UpstreamError,
            "the deployment's dialect is unknown",
        )
    })?;
    if !upstream.speaks(api) {
        return Err(InferenceError::new(
            api,
            ErrorKind::InvalidRequest,
            format!(
                "`{model}` is served by deployment `{}` (dialect {upstream}), which this \
                 endpoint cannot reach; call it through the matching API",
                deployment.name
            ),
        ));
    }
    Ok(Route {
        alias,
        deployment,
        upstream,
    })
}

/// Whether `name` could be an alias or a checkpoint id at all: the registry takes only
/// printable ASCII without spaces in names, providers and snapshots. Any other name is
/// unknown without asking the database (PostgreSQL cannot even compare a text holding NUL).
pub(crate) fn may_be_registered(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_graphic())
}
