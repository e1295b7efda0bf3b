//! Running the router on a socket, and stopping it so that no entry is left unsigned.

use std::future::{Future, IntoFuture as _};

use axum::http::Request;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tracing::Span;

use crate::state::AppState;

/// Serves [`crate::router`] on `listener` until `shutdown` completes. Then it stops accepting,
/// lets the answers in flight finish (streams included, with their completion entries) for
/// at most the configured grace period, and stops the ledger writer: it commits what is
/// queued and signs a tree head over the last entries before this returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "gateway listening");
    let probe = state
        .config()
        .probe_interval
        .map(|interval| tokio::spawn(crate::probe::run(state.clone(), interval)));
    // Small writes (stream events, headers) go out at once instead of waiting on the
    // caller's delayed acknowledgement.
    let listener = listener.tap_io(|connection| {
        if let Err(error) = connection.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let grace = state.config().shutdown_grace;
    let (signalled, signal_seen) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down: no new connections; waiting for answers in flight"
        );
        let _ = signalled.send(());
    };
    let server = axum::serve(listener, crate::router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .into_future();
    let grace_over = async move {
        if signal_seen.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let served = tokio::select! {
        served = server => served,
        () = grace_over => {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "answers still in flight after the grace period; closing their connections"
            );
            Ok(())
        }
    };
    if let Some(probe) = probe {
        probe.abort();
        let _ = probe.await;
    }
    // LIMITATION: a stream relay still waiting on its upstream after the grace period is
    // abandoned with the runtime; its identity entry stands, its completion entry is lost.
    let abandoned = state.finish_tasks(grace).await;
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "stream relays still running; their completions are lost"
        );
    }
    tracing::info!("answers finished; committing what is queued and signing a last tree head");
    let closed = tokio::task::spawn_blocking(move || state.close()).await;
    match closed {
        Ok(()) => tracing::info!("ledger closed; stopped"),
        Err(error) => tracing::error!(%error, "closing the ledger failed; run `ascribe verify`"),
    }
    served
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "shutting down"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

/// The span of one request: method and path, and the actor and alias once known. Headers
/// are left out: they carry the bearer token.
pub(crate) fn request_span<B>(request: &Request<B>) -> Span {
    tracing::info_span!(
        "gateway",
        method = %request.method(),
        path = %request.uri().path(),
        actor = tracing::field::Empty,
        alias = tracing::field::Empty,
    )
}
