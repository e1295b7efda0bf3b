//! Ascribe's HTTP surface: today the registry's admin API, next the OpenAI and Anthropic
//! inference routes, all on one [`router`].
//!
//! Layout:
//!
//! - [`router`] composes the routes and the layers every request passes through.
//! - [`AppState`] is what handlers share: the ledger's single writer (an
//!   `ascribe_store::Appender`, group commit) and a few read connections.
//! - `auth` turns a bearer token into the key that made the request; that key's *name* is the
//!   actor of every entry the request writes.
//! - `admin` holds the `/admin/v1` handlers, one module per resource.
//! - [`ApiError`] is the one rescue point: every failure becomes a status and a JSON body
//!   `{"error": {"type", "message"}}`.
//! - [`serve`] runs the router on a socket until a shutdown signal, then stops the writer so
//!   the last entries are covered by a signed tree head.
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
pub mod probe;
mod server;
mod state;
#[cfg(feature = "testing")]
pub mod testing;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use server::{serve, shutdown_signal};
pub use state::{AppState, GatewayConfig};

/// Largest request body accepted, in bytes; a larger one is answered with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Every route of the gateway, with the layers each request passes through.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(audit::routes())
        .nest("/admin/v1", admin::routes())
        .nest("/v1", inference::routes())
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        // Innermost first. Bodies are buffered by the JSON extractor, which reads this limit.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
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
