//! `ascribe serve`: the gateway's HTTP API on a socket until SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::Context as _;
use ascribe_gateway::AppState;
use clap::Args;

use crate::config::{self, Loaded, Source, FIELDS};
use crate::context::Context;
use crate::Outcome;

/// Flags of `ascribe serve`. Each overrides its field of the configuration file and its
/// `ASCRIBE_*` variable (docs/configuration.md).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on ADDRESS (HOST:PORT); port 0 picks a free port.
    ///
    /// Default: 127.0.0.1:8080, reachable from this machine only. The address actually bound
    /// is printed on stdout as `listening on http://ADDRESS`.
    #[arg(long, value_name = "ADDRESS")]
    pub listen: Option<String>,

    /// Probe the identity of every self-hosted (openai-compatible) deployment every INTERVAL
    /// (`30`, `30s`, `5m`): its model listing and its answer to a fixed canary prompt at
    /// temperature 0; a change is recorded as an observation. Default: 0, never.
    #[arg(long, value_name = "INTERVAL", value_parser = config::parse_duration)]
    pub probe_interval: Option<Duration>,

    /// Give up on an upstream that sends no response headers, or no next chunk of a
    /// stream, for INTERVAL (`300`, `300s`, `5m`). Default: 300s.
    #[arg(long, value_name = "INTERVAL", value_parser = config::parse_duration)]
    pub upstream_timeout: Option<Duration>,

    /// Check the configuration, the signing key and the database, print every setting with
    /// where it came from, and exit without serving (0: ready to start; 1: a check failed).
    #[arg(long)]
    pub check_config: bool,
}

/// Serves until a shutdown signal, then lets requests in flight finish and signs a last tree
/// head over the entries they wrote.
pub fn run(context: &Context, mut loaded: Loaded, args: ServeArgs) -> anyhow::Result<Outcome> {
    apply_flags(&mut loaded, &args);
    let provider_key_variables = warn_about_missing_provider_keys(context);
    for variable in Loaded::unknown_variables(&provider_key_variables) {
        tracing::warn!(%variable, "this ASCRIBE_* variable names no setting; it is ignored");
    }
    if args.check_config {
        return check_config(context, &loaded);
    }
    let config = &loaded.config;
    let signer = context
        .keys
        .load_signer()
        .context("cannot load the ledger's signing key")?;
    // Opened before the runtime starts: the PostgreSQL client blocks on a runtime of its own,
    // which it may not do on a runtime thread.
    let state = AppState::open_with(&context.location, signer, config.gateway())?;
    // The OTLP exporter's HTTP client blocks: it is set up and shut down outside the runtime.
    let telemetry = match config.telemetry.otlp_traces {
        true => Some(ascribe_gateway::telemetry::install_otlp()?),
        false => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(serve(&config.listen, state));
    drop(runtime);
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    served?;
    Ok(Outcome::Success)
}

/// Flags win over the file and the variables.
fn apply_flags(loaded: &mut Loaded, args: &ServeArgs) {
    if let Some(listen) = &args.listen {
        loaded.config.listen = listen.clone();
        loaded.set_by_flag("listen", "--listen");
    }
    if let Some(interval) = args.probe_interval {
        loaded.config.probe.interval = interval;
        loaded.set_by_flag("probe.interval", "--probe-interval");
    }
    if let Some(timeout) = args.upstream_timeout {
        loaded.config.upstream.timeout = timeout;
        loaded.set_by_flag("upstream.timeout", "--upstream-timeout");
    }
}

/// `serve --check-config`: every setting with its source, then the checks that would stop
/// `serve` at start.
fn check_config(context: &Context, loaded: &Loaded) -> anyhow::Result<Outcome> {
    match &loaded.file {
        Some(file) => println!("configuration file  {}", file.display()),
        None => println!("configuration file  none (defaults, ASCRIBE_* variables and flags)"),
    }
    println!();
    for field in FIELDS {
        let value =
            config::value_text(&loaded.config, field.path).unwrap_or_else(|| "(unset)".to_owned());
        let source = match loaded.source(field.path) {
            Source::Default => "default".to_owned(),
            Source::File => "file".to_owned(),
            Source::Env(name) | Source::Flag(name) => name,
        };
        println!("{:<28} {:<24} {source}", field.path, value);
    }
    println!();

    let mut problems = 0;
    let mut check = |what: &str, outcome: anyhow::Result<String>| match outcome {
        Ok(detail) => println!("ok      {what}: {detail}"),
        Err(error) => {
            problems += 1;
            println!("FAILED  {what}: {error:#}");
        }
    };
    check("listen address", listen_address(&loaded.config.listen));
    check(
        "signing key",
        context
            .keys
            .load_signer()
            .map(|signer| format!("ledger `{}`", signer.name()))
            .map_err(anyhow::Error::from),
    );
    check(
        "database",
        context
            .backend()
            .map(|backend| format!("{} opens", backend.describe())),
    );
    if loaded.config.telemetry.otlp_traces {
        check("OTLP export", otlp_settings());
    }
    match problems {
        0 => {
            println!("\nready to serve");
            Ok(Outcome::Success)
        }
        1 => {
            println!("\nnot ready: 1 check failed");
            Ok(Outcome::ProblemFound)
        }
        _ => {
            println!("\nnot ready: {problems} checks failed");
            Ok(Outcome::ProblemFound)
        }
    }
}

fn listen_address(listen: &str) -> anyhow::Result<String> {
    use std::net::ToSocketAddrs as _;

    let mut addresses = listen
        .to_socket_addrs()
        .with_context(|| format!("`{listen}` is not HOST:PORT"))?;
    let first = addresses
        .next()
        .with_context(|| format!("`{listen}` names no address"))?;
    Ok(first.to_string())
}

/// The OTLP protocol and endpoint the standard variables name.
fn otlp_settings() -> anyhow::Result<String> {
    let target = ascribe_gateway::telemetry::OtlpTarget::from_env()?;
    if !target.endpoint_is_http() {
        anyhow::bail!(
            "the OTLP endpoint `{}` is not an http:// or https:// URL; set \
             OTEL_EXPORTER_OTLP_ENDPOINT to one, such as http://127.0.0.1:4318",
            target.endpoint
        );
    }
    Ok(format!("{} to {}", target.protocol, target.endpoint))
}

/// Says at start which deployments cannot be called because their provider key variable is
/// not set in this environment (calls to them would fail); returns the variables the
/// registry names.
fn warn_about_missing_provider_keys(context: &Context) -> Vec<String> {
    let Ok(mut backend) = context.backend() else {
        return Vec::new();
    };
    let Ok(deployments) = ascribe_registry::queries::deployments(backend.as_mut()) else {
        return Vec::new();
    };
    let mut variables = Vec::new();
    for deployment in deployments {
        let Some(variable) = deployment.api_key_env else {
            continue;
        };
        if std::env::var_os(&variable).is_none() {
            tracing::warn!(
                %variable,
                deployment = %deployment.name,
                "the provider key variable is not set; the deployment cannot be called"
            );
        }
        variables.push(variable);
    }
    variables
}

/// Connections the kernel queues before the gateway accepts them. The system default (128)
/// drops connection attempts from a few hundred callers arriving at once, and each dropped
/// attempt costs its caller a one-second retry.
const LISTEN_BACKLOG: u32 = 4096;

async fn serve(listen: &str, state: AppState) -> anyhow::Result<()> {
    let listener = bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    ascribe_gateway::serve(listener, state, ascribe_gateway::shutdown_signal())
        .await
        .context("the gateway stopped serving")
}

/// Binds the first address `listen` resolves to, with [`LISTEN_BACKLOG`].
async fn bind(listen: &str) -> std::io::Result<tokio::net::TcpListener> {
    let address = tokio::net::lookup_host(listen)
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the address resolves to nothing",
            )
        })?;
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
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

    #[test]
    fn intervals_take_seconds_or_units() {
        let parsed = Cli::try_parse_from(["ascribe", "serve", "--probe-interval", "90"]);
        let Command::Serve(serve) = parsed.expect("valid").command else {
            panic!("not serve");
        };
        assert_eq!(
            serve.probe_interval,
            Some(std::time::Duration::from_secs(90))
        );
        let parsed = Cli::try_parse_from(["ascribe", "serve", "--upstream-timeout", "1500ms"]);
        let Command::Serve(serve) = parsed.expect("valid").command else {
            panic!("not serve");
        };
        assert_eq!(
            serve.upstream_timeout,
            Some(std::time::Duration::from_millis(1500))
        );
        assert!(Cli::try_parse_from(["ascribe", "serve", "--upstream-timeout", "soon"]).is_err());
    }
}
