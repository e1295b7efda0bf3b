//! Ascribe's HTTP surface, `ascribe serve`: the OpenAI and Anthropic inference routes, the
//! registry's admin API, the auditor's routes and pages, health, readiness and metrics, all
//! on one [`router`].
//!
//! Layout:
//!
//! - [`router`] composes the routes and the layers every request passes through.
//! - [`AppState`] is what handlers share: the ledger's single writer (an
//!   `ascribe_store::Appender`, group commit), a few read connections, the metrics and what
//!   readiness knows.
//! - `inference` is the request path of one call: authenticate, resolve the alias, forward,
//!   read the served identity, record, release.
//! - `auth` turns a bearer token into the key that made the request; that key's *name* is the
//!   actor of every entry the request writes.
//! - `admin` holds the `/admin/v1` handlers, one module per resource; `audit` the auditor's.
//! - `health` answers `/healthz` and `/readyz`; `metrics` answers `/metrics`; [`telemetry`]
//!   gives each inference an OpenTelemetry span.
//! - [`ApiError`] is the one rescue point: every failure becomes a status and a JSON body
//!   `{"error": {"type", "message"}}`.
//! - [`serve`] runs the router on a socket until a shutdown signal, lets answers in flight
//!   finish, then stops the writer so the last entries are covered by a signed tree head.
//!
//! The design decision to know: a handler answers only after the ledger writer acknowledged
//! its entry, and the writer acknowledges only after the commit holding it returned. A
//! response that says `seq: 41` therefore names a durable entry.
//!
//! This crate never takes the actor from a request body, never puts a token in a response
//! or a log line, never puts an error chain or a database message in a response (they go to
//! the log), and never writes the database except through the ledger writer. The admin API
//! is documented in `docs/admin-api.md`.

#![deny(missing_docs)]

mod admin;
mod audit;
mod auth;
mod error;
mod extract;
mod health;
mod inference;
mod metrics;
pub mod probe;
mod server;
mod state;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use server::{serve, shutdown_signal};
pub use state::{AppState, GatewayConfig};

/// Largest request body accepted by default, in bytes; a larger one is answered with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Every route of the gateway, with the layers each request passes through.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().max_request_body;
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(audit::routes())
        .nest("/admin/v1", admin::routes())
        .nest("/v1", inference::routes())
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        // Innermost first. Bodies are buffered by the JSON extractor, which reads this limit.
        .layer(DefaultBodyLimit::max(body_limit))
        // One `gateway` span per request; `actor` and `alias` are recorded once known. Server
        // errors are logged once, where they are rescued, so the layer's own failure log is
        // switched off.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(server::request_span)
                .on_failure(()),
        )
        .with_state(state)
}
