//! Resolving the requested `model` to a deployment at this instant.

use ascribe_dialects::{Api, ErrorKind, Upstream};
use ascribe_registry::{queries, AliasRecord, DeploymentRecord};
use ascribe_store::{StoreError, Tx};

use super::error::InferenceError;

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

/// Where `model` leads, read inside a transaction: see [`queries::find_route`]. A name the
/// registry could not hold is unknown without a query.
pub(crate) fn lookup(tx: &mut dyn Tx, model: &str) -> Result<Option<Found>, StoreError> {
    match may_be_registered(model) {
        true => queries::find_route(tx, model),
        false => Ok(None),
    }
}

/// An alias (or none, for a checkpoint id) and the deployment it leads to.
pub(crate) type Found = (Option<AliasRecord>, DeploymentRecord);

/// The route for `model` from what [`lookup`] found: an unknown name is a 404 in the caller's
/// dialect, a deployment this endpoint cannot reach a 400.
pub(crate) fn route(api: Api, model: &str, found: Option<Found>) -> Result<Route, InferenceError> {
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
