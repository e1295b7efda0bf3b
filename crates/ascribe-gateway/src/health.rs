//! `GET /healthz`: the process is up and answering; it needs no key and reads nothing.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::state::AppState;

/// The health answer.
#[derive(Serialize)]
pub(crate) struct Health {
    status: &'static str,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(health_show))
}

async fn health_show() -> Json<Health> {
    Json(Health { status: "ok" })
}
