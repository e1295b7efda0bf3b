//! Where a request goes upstream: the URL and the headers that carry the gateway's own
//! provider credentials.

use std::fmt;

use crate::{Api, Error, Upstream};

/// The `anthropic-version` sent when the caller did not send one.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// The URL and headers for one upstream call. The body comes from
/// [`crate::InferenceRequest::upstream_body`].
///
/// `Debug` hides the values of credential headers, so a target can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    /// The full URL, query included.
    pub url: String,
    /// Header names (lowercase) and values, `content-type` and credentials included.
    pub headers: Vec<(String, String)>,
}

/// Addresses `upstream_model` on a deployment's upstream for a request that arrived on `api`.
///
/// - `base_url` is the deployment's base URL, with any version path it needs:
///   `https://api.openai.com/v1`, `https://api.anthropic.com/v1`, `http://vllm:8000/v1`, and
///   for Azure the resource root `https://NAME.openai.azure.com`. A trailing `/` is ignored.
/// - OpenAI and OpenAI-compatible: `{base}/chat/completions`, `{base}/responses` or
///   `{base}/embeddings`, with `authorization: Bearer {api_key}`. The key is required for
///   `openai` and optional for `openai-compatible` (a self-hosted server may need none).
/// - Azure OpenAI: `{base}/openai/deployments/{upstream_model}/chat/completions` (or
///   `/embeddings`) and, for Responses, `{base}/openai/responses`, each with
///   `?api-version={api_version}` and an `api-key` header; both are required. The
///   deployment name goes in the URL and the body's `model` (the same name) is left there,
///   which is what Azure's Responses API reads.
/// - Anthropic: `{base}/messages` with `x-api-key` and `anthropic-version`: `api_version`
///   when given (the gateway passes the caller's header through), else
///   [`DEFAULT_ANTHROPIC_VERSION`].
pub fn upstream_target(
    api: Api,
    upstream: Upstream,
    base_url: &str,
    upstream_model: &str,
    api_key: Option<&str>,
    api_version: Option<&str>,
) -> Result<UpstreamTarget, Error> {
    // LIMITATION: an OpenAI-API call cannot go to an Anthropic upstream, nor the reverse.
    // Serving one dialect from the other means translating bodies, streams and errors in
    // both directions, which would put a model's answer through code of our own; a
    // translation layer could lift this, but the ledger would then have to record both forms.
    if !upstream.speaks(api) {
        return Err(Error::DialectMismatch { api, upstream });
    }
    let base = checked_base_url(base_url)?;
    match upstream {
        Upstream::Openai | Upstream::OpenaiCompatible => {
            openai_target(api, upstream, base, api_key)
        }
        Upstream::AzureOpenai => azure_target(api, base, upstream_model, api_key, api_version),
        Upstream::Anthropic => anthropic_target(base, api_key, api_version),
    }
}

fn openai_target(
    api: Api,
    upstream: Upstream,
    base: &str,
    api_key: Option<&str>,
) -> Result<UpstreamTarget, Error> {
    let mut headers = vec![json_content_type()];
    match api_key {
        Some(key) => headers.push(header("authorization", format!("Bearer {key}"))?),
        None if upstream == Upstream::OpenaiCompatible => {}
        None => return Err(Error::MissingApiKey { upstream }),
    }
    Ok(UpstreamTarget {
        url: format!("{base}{}", openai_suffix(api)),
        headers,
    })
}

fn azure_target(
    api: Api,
    base: &str,
    deployment: &str,
    api_key: Option<&str>,
    api_version: Option<&str>,
) -> Result<UpstreamTarget, Error> {
    let api_key = api_key.ok_or(Error::MissingApiKey {
        upstream: Upstream::AzureOpenai,
    })?;
    let api_version = url_part("api version", api_version.ok_or(Error::MissingApiVersion)?)?;
    let path = match api {
        Api::Responses => "/openai/responses".to_owned(),
        _ => {
            let deployment = url_part("deployment", deployment)?;
            format!("/openai/deployments/{deployment}{}", openai_suffix(api))
        }
    };
    let url = format!("{base}{path}?api-version={api_version}");
    let headers = vec![json_content_type(), header("api-key", api_key.to_owned())?];
    Ok(UpstreamTarget { url, headers })
}

fn anthropic_target(
    base: &str,
    api_key: Option<&str>,
    api_version: Option<&str>,
) -> Result<UpstreamTarget, Error> {
    let api_key = api_key.ok_or(Error::MissingApiKey {
        upstream: Upstream::Anthropic,
    })?;
    let version = api_version.unwrap_or(DEFAULT_ANTHROPIC_VERSION);
    let headers = vec![
        json_content_type(),
        header("x-api-key", api_key.to_owned())?,
        header("anthropic-version", version.to_owned())?,
    ];
    Ok(UpstreamTarget {
        url: format!("{base}/messages"),
        headers,
    })
}

fn openai_suffix(api: Api) -> &'static str {
    match api {
        Api::ChatCompletions => "/chat/completions",
        Api::Responses => "/responses",
        Api::Embeddings => "/embeddings",
        // Unreachable behind `speaks`; the path is still the honest one.
        Api::Messages => "/messages",
    }
}

/// `base_url` without its trailing `/`, if it is an absolute http(s) URL.
fn checked_base_url(base_url: &str) -> Result<&str, Error> {
    let base = base_url.trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    let clean = !base.contains(['?', '#']) && !base.chars().any(|c| c.is_whitespace());
    if host_ok && clean {
        Ok(base)
    } else {
        Err(Error::InvalidBaseUrl {
            base_url: base_url.to_owned(),
        })
    }
}

fn url_part<'a>(what: &'static str, value: &'a str) -> Result<&'a str, Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !value.is_empty() && value.chars().all(allowed) {
        Ok(value)
    } else {
        Err(Error::InvalidUrlPart {
            what,
            value: value.to_owned(),
        })
    }
}

fn header(name: &'static str, value: String) -> Result<(String, String), Error> {
    if value.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidHeaderValue { header: name });
    }
    Ok((name.to_owned(), value))
}

fn json_content_type() -> (String, String) {
    ("content-type".to_owned(), "application/json".to_owned())
}

// === impl UpstreamTarget ===

impl UpstreamTarget {
    /// The value of header `name` (lowercase), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl fmt::Debug for UpstreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| match name.as_str() {
                "authorization" | "api-key" | "x-api-key" => (name.as_str(), "<redacted>"),
                _ => (name.as_str(), value.as_str()),
            })
            .collect();
        f.debug_struct("UpstreamTarget")
            .field("url", &self.url)
            .field("headers", &shown)
            .finish()
    }
}
