//! The identity probe: what the gateway can learn about a self-hosted deployment without its
//! help, and an observation in the ledger when that changes.
//!
//! A self-hosted server often says nothing usable about the weights it runs: llama.cpp-based
//! servers echo the requested `model` and send no fingerprint. So at each interval the probe
//! asks every `openai-compatible` deployment for its `/models` listing and for its answer to
//! a fixed canary prompt at temperature 0, and records an `observation.recorded` entry when
//! either differs from what it last recorded (the first probe is the baseline). Weights
//! swapped behind a running deployment show up as a changed canary answer; weights that answer
//! the canary identically cannot be told apart from outside.

use std::time::Duration;

use ascribe_dialects::{answer_text, upstream_target, Api, Upstream};
use ascribe_inference::ProbeResult;
use ascribe_registry::{queries, DeploymentRecord, Dialect};
use ascribe_store::AppendError;
use sha2::{Digest as _, Sha256};

use crate::state::AppState;

/// The canary prompt; any fixed prompt works, one with a short, deterministic answer is best.
pub const CANARY_PROMPT: &str = "Complete the sequence with the next three words: one, two, three,";

/// Probes every self-hosted deployment every `interval`, until the task is aborted.
pub(crate) async fn run(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        probe_once(&state).await;
    }
}

/// One round of probes, as each interval runs it: every self-hosted deployment, one after
/// the other; failures are logged and skipped.
pub async fn probe_once(state: &AppState) {
    let Ok(deployments) = state.read(queries::deployments).await else {
        tracing::warn!("identity probe cannot read the registry");
        return;
    };
    let self_hosted = deployments
        .into_iter()
        .filter(|d| d.dialect == Dialect::OpenaiCompatible);
    for deployment in self_hosted {
        match probe(state, &deployment).await {
            Ok(result) => {
                state.readiness().upstream_probed(&deployment.name, None);
                record(state, result).await;
            }
            Err(reason) => {
                tracing::warn!(deployment = %deployment.name, %reason, "identity probe failed");
                state
                    .readiness()
                    .upstream_probed(&deployment.name, Some(reason));
            }
        }
    }
}

async fn record(state: &AppState, result: ProbeResult) {
    let deployment = result.deployment.clone();
    let Ok(entry) = result.into_entry() else {
        return;
    };
    match state.append_all(vec![entry]).await.pop() {
        Some(Ok(appended)) => {
            let kind = appended.entry.body["kind"]
                .as_str()
                .unwrap_or("identity_probe");
            state.metrics().observation_recorded(kind);
            tracing::info!(
                %deployment,
                kind,
                seq = appended.entry.seq,
                "identity probe observation recorded"
            );
        }
        Some(Err(AppendError::Refused(_))) | None => {}
        Some(Err(error)) => tracing::error!(%deployment, %error, "probe observation not recorded"),
    }
}

/// One probe: the listing and the canary answer, as digests.
async fn probe(state: &AppState, deployment: &DeploymentRecord) -> Result<ProbeResult, String> {
    let key = match &deployment.api_key_env {
        Some(variable) => Some(std::env::var(variable).map_err(|_| format!("{variable} unset"))?),
        None => None,
    };
    let models = listing(state, deployment, key.as_deref()).await?;
    let canary = canary_answer(state, deployment, key.as_deref()).await?;
    Ok(ProbeResult {
        deployment: deployment.name.clone(),
        checkpoint: deployment.checkpoint.clone(),
        models_sha256: hex::encode(Sha256::digest(models.join("\n"))),
        models,
        canary_sha256: hex::encode(Sha256::digest(canary)),
    })
}

async fn listing(
    state: &AppState,
    deployment: &DeploymentRecord,
    key: Option<&str>,
) -> Result<Vec<String>, String> {
    let url = format!("{}/models", deployment.base_url.trim_end_matches('/'));
    let mut request = state
        .client()
        .get(url)
        .timeout(state.config().upstream_timeout);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let listing: serde_json::Value = request
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| error.without_url().to_string())?
        .json()
        .await
        .map_err(|error| error.without_url().to_string())?;
    let mut ids: Vec<String> = listing["data"]
        .as_array()
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    Ok(ids)
}

async fn canary_answer(
    state: &AppState,
    deployment: &DeploymentRecord,
    key: Option<&str>,
) -> Result<String, String> {
    let target = upstream_target(
        Api::ChatCompletions,
        Upstream::OpenaiCompatible,
        &deployment.base_url,
        &deployment.upstream_model,
        key,
        None,
    )
    .map_err(|error| error.to_string())?;
    let body = serde_json::json!({
        "model": deployment.upstream_model,
        "messages": [{"role": "user", "content": CANARY_PROMPT}],
        "temperature": 0,
        "seed": 0,
        "max_tokens": 16,
    });
    let mut request = state
        .client()
        .post(&target.url)
        .timeout(state.config().upstream_timeout);
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    let answer = request
        .body(body.to_string())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| error.without_url().to_string())?
        .bytes()
        .await
        .map_err(|error| error.without_url().to_string())?;
    answer_text(Api::ChatCompletions, &answer).ok_or_else(|| "the canary got no answer".to_owned())
}
