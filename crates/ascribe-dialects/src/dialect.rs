//! The two sides of a call: the [`Api`] a caller speaks and the [`Upstream`] a deployment uses.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The caller-facing endpoint a request arrived on.
///
/// The gateway picks it from the route; it decides how the body is read, how a stream is
/// observed and which error shape the caller gets back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// Anthropic `POST /v1/messages`.
    Messages,
}

/// How a deployment reaches its provider or server: the deployment's dialect.
///
/// Written `openai`, `azure-openai`, `anthropic` or `openai-compatible` in configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upstream {
    /// `api.openai.com` or anything with OpenAI's paths and bearer keys.
    Openai,
    /// Azure OpenAI: the deployment in the URL, an `api-key` header, an `api-version` query.
    AzureOpenai,
    /// Anthropic's Messages API.
    Anthropic,
    /// A self-hosted or third-party server speaking OpenAI's API (vLLM, llama.cpp, TGI,
    /// Ollama `/v1`, Mistral, Groq, DeepSeek, OpenRouter, Together).
    OpenaiCompatible,
}

// === impl Api ===

impl Api {
    /// The path a caller posts to, as the gateway serves it.
    pub fn path(self) -> &'static str {
        match self {
            Api::ChatCompletions => "/v1/chat/completions",
            Api::Responses => "/v1/responses",
            Api::Embeddings => "/v1/embeddings",
            Api::Messages => "/v1/messages",
        }
    }

    /// Whether this endpoint belongs to Anthropic's API rather than OpenAI's.
    pub fn is_anthropic(self) -> bool {
        self == Api::Messages
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

// === impl Upstream ===

impl Upstream {
    /// The name used in configuration and in ledger entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Upstream::Openai => "openai",
            Upstream::AzureOpenai => "azure-openai",
            Upstream::Anthropic => "anthropic",
            Upstream::OpenaiCompatible => "openai-compatible",
        }
    }

    /// Whether this upstream can serve `api` without translating between dialects.
    pub fn speaks(self, api: Api) -> bool {
        (self == Upstream::Anthropic) == api.is_anthropic()
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Upstream {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let upstream = match name {
            "openai" => Upstream::Openai,
            "azure-openai" => Upstream::AzureOpenai,
            "anthropic" => Upstream::Anthropic,
            "openai-compatible" => Upstream::OpenaiCompatible,
            _ => {
                return Err(Error::UnknownUpstream {
                    name: name.to_owned(),
                })
            }
        };
        Ok(upstream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_round_trip() {
        for upstream in [
            Upstream::Openai,
            Upstream::AzureOpenai,
            Upstream::Anthropic,
            Upstream::OpenaiCompatible,
        ] {
            assert_eq!(
                upstream.to_string().parse::<Upstream>().ok(),
                Some(upstream)
            );
        }
    }

    #[test]
    fn unknown_upstream_names_the_choices() {
        let error = "bedrock"
            .parse::<Upstream>()
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "unknown upstream `bedrock`; expected openai, azure-openai, anthropic or \
                 openai-compatible"
            )
        );
    }

    #[test]
    fn only_anthropic_speaks_messages() {
        assert!(Upstream::Anthropic.speaks(Api::Messages));
        assert!(!Upstream::Anthropic.speaks(Api::ChatCompletions));
        assert!(Upstream::AzureOpenai.speaks(Api::Responses));
        assert!(!Upstream::OpenaiCompatible.speaks(Api::Messages));
    }
}
