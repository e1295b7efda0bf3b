//! `ascribe replay ID`: send an inference's kept request to the deployment that answered it,
//! never to whatever its alias points at today, and say whether the same checkpoint gives the
//! same answer.

use std::time::Duration;

use anyhow::Context as _;
use ascribe_dialects::{
    answer_text, identity_from_response, parse_request, upstream_target, Api, ServedIdentity,
    StreamObserver, Upstream,
};
use ascribe_inference::queries::{payload, InferenceView};
use ascribe_registry::{queries, DeploymentRecord};
use ascribe_store::PendingEntry;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::cli::ReplayArgs;
use crate::commands::{append, print_json};
use crate::context::{actor, Context};
use crate::Outcome;

/// Entry kind of a replay.
const REPLAY_RECORDED: &str = "replay.recorded";

/// What a replay found; its JSON form is a stable contract and the body of the
/// `replay.recorded` entry.
#[derive(Debug, Serialize)]
struct ReplayReport {
    inference_id: String,
    deployment: String,
    checkpoint: String,
    /// `reproduced`, `output_differs`, `identity_differs` or `not_deployed`.
    verdict: &'static str,
    /// The served model the original answer named, and the one the replay's answer names.
    original_served_model: Option<String>,
    replay_served_model: Option<String>,
    /// SHA-256 of each answer's text.
    original_output_sha256: Option<String>,
    replay_output_sha256: Option<String>,
    /// The replay's answer text.
    replay_output: Option<String>,
    /// What kept the replay from running, when it could not.
    error: Option<String>,
    /// The replay's ledger entry.
    seq: Option<u64>,
}

/// Replays, records the replay, prints the report; exit 1 unless it reproduced.
pub fn run(context: &Context, args: ReplayArgs) -> anyhow::Result<Outcome> {
    let mut backend = context.backend()?;
    let view = ascribe_inference::queries::inference(backend.as_mut(), &args.id)?
        .with_context(|| format!("no inference `{}` in this ledger", args.id))?;
    let record = &view.record;
    let api = api_of(&record.api)?;
    let request = kept(
        backend.as_mut(),
        record.retained.as_ref().map(|kept| &kept.request),
    )
    .with_context(|| {
        format!(
            "the request of {} was not kept: deployment `{}` keeps digests only; register \
                 deployments with `--retention full` to make replay possible",
            args.id, record.deployment
        )
    })?;
    let original = original_answer(backend.as_mut(), &view)?;
    let deployment = queries::deployment(backend.as_mut(), &record.deployment)?
        .with_context(|| format!("deployment `{}` is not registered", record.deployment))?;
    drop(backend);

    let timeout = Duration::from_secs(args.timeout);
    let mut report = match call(api, &deployment, &request, timeout) {
        Ok((served, body)) => compare(&view, original.as_deref(), api, &served, &body),
        Err(error) => not_deployed(&view, original.as_deref(), &deployment, error),
    };
    let body = serde_json::to_value(&report)?;
    let entry = PendingEntry::new(REPLAY_RECORDED, &actor(&args.actor), body);
    report.seq = Some(append(&mut context.ledger()?, entry)?);
    print(&report, args.output.json)?;
    Ok(if report.verdict == "reproduced" {
        Outcome::Success
    } else {
        Outcome::ProblemFound
    })
}

fn api_of(name: &str) -> anyhow::Result<Api> {
    Ok(match name {
        "chat.completions" => Api::ChatCompletions,
        "responses" => Api::Responses,
        "embeddings" => Api::Embeddings,
        "messages" => Api::Messages,
        other => anyhow::bail!("inference was made on an unknown endpoint `{other}`"),
    })
}

fn kept(backend: &mut dyn ascribe_store::Backend, digest: Option<&String>) -> Option<Vec<u8>> {
    payload(backend, digest?).ok().flatten()
}

/// The original answer's text, from the kept response (whole or streamed).
fn original_answer(
    backend: &mut dyn ascribe_store::Backend,
    view: &InferenceView,
) -> anyhow::Result<Option<String>> {
    let record = &view.record;
    let digest = match &view.completion {
        Some(completion) => completion.record.retained_response.as_ref(),
        None => record
            .retained
            .as_ref()
            .and_then(|kept| kept.response.as_ref()),
    };
    let api = api_of(&record.api)?;
    Ok(kept(backend, digest).and_then(|body| answer_text(api, &body)))
}

/// Sends the kept request to the recorded deployment, with the gateway's credentials.
fn call(
    api: Api,
    deployment: &DeploymentRecord,
    request: &[u8],
    timeout: Duration,
) -> anyhow::Result<(ServedIdentity, Vec<u8>)> {
    let upstream: Upstream = deployment
        .dialect
        .to_string()
        .parse()
        .map_err(anyhow::Error::msg)?;
    let parsed = parse_request(api, request)?;
    let key = match &deployment.api_key_env {
        Some(variable) => Some(std::env::var(variable).with_context(|| {
            format!("the deployment's key variable {variable} is not set in this environment")
        })?),
        None => None,
    };
    let target = upstream_target(
        api,
        upstream,
        &deployment.base_url,
        &deployment.upstream_model,
        key.as_deref(),
        None,
    )?;
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()?;
    let mut builder = client
        .post(&target.url)
        .body(parsed.upstream_body(&deployment.upstream_model));
    for (name, value) in &target.headers {
        builder = builder.header(name, value);
    }
    let response = builder
        .send()
        .map_err(|error| anyhow::anyhow!("{}", without_url(&error)))?;
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect();
    let body = response.bytes()?.to_vec();
    if !status.is_success() {
        anyhow::bail!("the deployment answered {status}");
    }
    let served = if parsed.stream() {
        let mut observer = StreamObserver::new(api, upstream, &headers);
        observer.feed(&body);
        observer.finish().identity
    } else {
        identity_from_response(upstream, &headers, &body)
    };
    Ok((served, body))
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "the deployment");
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn original_served(view: &InferenceView) -> Option<String> {
    let first = view.record.served.get("model").and_then(Value::as_str);
    let last = view
        .completion
        .as_ref()
        .and_then(|c| c.record.served.get("model")?.as_str());
    first.or(last).map(str::to_owned)
}

fn compare(
    view: &InferenceView,
    original: Option<&str>,
    api: Api,
    served: &ServedIdentity,
    body: &[u8],
) -> ReplayReport {
    let replayed = answer_text(api, body);
    let original_served = original_served(view);
    let verdict = if served.model != original_served {
        "identity_differs"
    } else if original.is_some() && replayed.as_deref() == original {
        "reproduced"
    } else {
        "output_differs"
    };
    ReplayReport {
        inference_id: view.record.inference_id.clone(),
        deployment: view.record.deployment.clone(),
        checkpoint: view.record.checkpoint.clone(),
        verdict,
        original_served_model: original_served,
        replay_served_model: served.model.clone(),
        original_output_sha256: original.map(sha256),
        replay_output_sha256: replayed.as_deref().map(sha256),
        replay_output: replayed,
        error: None,
        seq: None,
    }
}

fn not_deployed(
    view: &InferenceView,
    original: Option<&str>,
    deployment: &DeploymentRecord,
    error: anyhow::Error,
) -> ReplayReport {
    ReplayReport {
        inference_id: view.record.inference_id.clone(),
        deployment: view.record.deployment.clone(),
        checkpoint: view.record.checkpoint.clone(),
        verdict: "not_deployed",
        original_served_model: original_served(view),
        replay_served_model: None,
        original_output_sha256: original.map(sha256),
        replay_output_sha256: None,
        replay_output: None,
        error: Some(format!(
            "checkpoint {} is no longer deployed at `{}` ({}): {error:#}; the replay did not \
             call any other deployment",
            view.record.checkpoint, deployment.name, deployment.base_url
        )),
        seq: None,
    }
}

fn print(report: &ReplayReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    let said = match report.verdict {
        "reproduced" => "reproduced: the same checkpoint gave the same answer".to_owned(),
        "output_differs" => "the same checkpoint gave a different answer".to_owned(),
        "identity_differs" => format!(
            "the deployment now serves `{}`, not `{}`",
            report.replay_served_model.as_deref().unwrap_or("?"),
            report.original_served_model.as_deref().unwrap_or("?")
        ),
        _ => report.error.clone().unwrap_or_default(),
    };
    println!(
        "{} via `{}` ({}): {said}",
        report.inference_id, report.deployment, report.checkpoint
    );
    Ok(())
}
