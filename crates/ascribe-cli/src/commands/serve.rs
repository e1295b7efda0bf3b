//! `ascribe serve`: the gateway's HTTP API on a socket until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use ascribe_gateway::AppState;
use clap::Args;

use crate::context::Context;
use crate::Outcome;

/// The address served when --listen is not given: this machine only.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Flags of `ascribe serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on ADDRESS (HOST:PORT); port 0 picks a free port.
    ///
    /// Default: 127.0.0.1:8080, reachable from this machine only. The address actually bound
    /// is printed on stdout as `listening on http://ADDRESS`.
    #[arg(long, env = "ASCRIBE_LISTEN", value_name = "ADDRESS")]
    pub listen: Option<String>,

    /// Probe the identity of every self-hosted (openai-compatible) deployment every SECONDS:
    /// its model listing and its answer to a fixed canary prompt at temperature 0; a change
    /// is recorded as an observation. Default: 0, never.
    #[arg(
        long,
        env = "ASCRIBE_PROBE_INTERVAL",
        value_name = "SECONDS",
        default_value_t = 0
    )]
    pub probe_interval: u64,

    /// Give up on an upstream that sends no response headers, or no next chunk of a
    /// stream, for SECONDS. Default: 300.
    #[arg(
        long,
        env = "ASCRIBE_UPSTREAM_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 300
    )]
    pub upstream_timeout: u64,
}

/// Serves until a shutdown signal, then lets requests in flight finish and signs a last tree
/// head over the entries they wrote.
pub fn run(context: &Context, args: ServeArgs) -> anyhow::Result<Outcome> {
    let listen = args.listen.unwrap_or_else(|| {
        tracing::info!(
            listen = DEFAULT_LISTEN,
            "no --listen given; using the default"
        );
        DEFAULT_LISTEN.to_owned()
    });
    let signer = context
        .keys
        .load_signer()
        .context("cannot load the ledger's signing key")?;
    // Opened before the runtime starts: the PostgreSQL client blocks on a runtime of its own,
    // which it may not do on a runtime thread.
    let config = ascribe_gateway::GatewayConfig {
        probe_interval: (args.probe_interval > 0)
            .then(|| std::time::Duration::from_secs(args.probe_interval)),
        upstream_timeout: std::time::Duration::from_secs(args.upstream_timeout.max(1)),
        ..ascribe_gateway::GatewayConfig::default()
    };
    warn_about_missing_provider_keys(context);
    let state = AppState::open_with(&context.location, signer, config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(&listen, state))?;
    Ok(Outcome::Success)
}

/// Says at start which deployments cannot be called because their provider key variable is
/// not set in this environment (calls to them would fail).
fn warn_about_missing_provider_keys(context: &Context) {
    let Ok(mut backend) = context.backend() else {
        return;
    };
    let Ok(deployments) = ascribe_registry::queries::deployments(backend.as_mut()) else {
        return;
    };
    for deployment in deployments {
        let Some(variable) = deployment.api_key_env else {
            continue;
        };
        if std::env::var_os(&variable).is_none() {
            eprintln!(
                "ascribe: warning: {variable} is not set; deployment `{}` cannot be called",
                deployment.name
            );
        }
    }
}

async fn serve(listen: &str, state: AppState) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    ascribe_gateway::serve(listener, state, ascribe_gateway::shutdown_signal())
        .await
        .context("the gateway stopped serving")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    fn listen(args: &[&str]) -> Option<String> {
        match Cli::try_parse_from(args).expect("valid").command {
            Command::Serve(serve) => serve.listen,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn listen_defaults_to_none_and_is_taken_when_given_once() {
        assert_eq!(listen(&["ascribe", "serve"]), None);
        assert_eq!(
            listen(&["ascribe", "serve", "--listen", "0.0.0.0:9000"]).as_deref(),
            Some("0.0.0.0:9000")
        );
        let twice = ["ascribe", "serve", "--listen", "a:1", "--listen", "b:2"];
        assert!(Cli::try_parse_from(twice).is_err());
    }
}
