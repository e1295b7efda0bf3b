//! The registry's records and the words they are made of.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a deployment's upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// OpenAI's API.
    Openai,
    /// Azure OpenAI: the deployment in the URL, an `api-key` header, an `api-version` query.
    AzureOpenai,
    /// Anthropic's Messages API.
    Anthropic,
    /// A self-hosted server speaking OpenAI's API (vLLM, llama.cpp, TGI, Ollama).
    OpenaiCompatible,
}

/// Whether a checkpoint is weights Ascribe hashed or a provider's hosted snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    /// Self-hosted weights; the id is the digest of their weight manifest.
    Weights,
    /// A provider's snapshot; the id is `<provider>:<snapshot>`.
    Hosted,
}

/// Why an alias moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationKind {
    /// A newer base model.
    Upgrade,
    /// A refreshed fine-tune of the same model.
    Refresh,
    /// Capacity moved between equivalent deployments.
    Capacity,
    /// Back to an earlier deployment.
    Rollback,
    /// An emergency change during an incident.
    Incident,
}

/// What the gateway does when the served model is not the expected one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MismatchPolicy {
    /// Record an observation and release the answer.
    #[default]
    Flag,
    /// Record the answer and an observation, and give the caller an error instead.
    Reject,
}

/// Which model name the gateway puts in the answer's `model` field for an alias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerModel {
    /// What the provider said it served, unchanged.
    #[default]
    Served,
    /// The name the caller asked for, for clients that break when it differs; the ledger
    /// still records the served model.
    Requested,
}

/// What the gateway keeps of request and response bodies for a deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    /// Only SHA-256 digests.
    #[default]
    Digest,
    /// The bodies themselves, content-addressed, so that replay is possible.
    Full,
}

/// What a stored document is to a checkpoint or rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentRole {
    /// A model card.
    Card,
    /// An evaluation profile: metrics and the digest of the evaluation data.
    Evaluation,
    /// Training-data lineage: sources and their digests.
    Lineage,
    /// Evidence attached to a rotation.
    Evidence,
}

macro_rules! text_enum {
    ($type:ty, $what:literal, $($variant:path => $text:literal),+ $(,)?) => {
        impl fmt::Display for $type {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.pad(match self { $($variant => $text),+ })
            }
        }

        impl FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($variant),)+
                    other => Err(format!(
                        "unknown {} `{other}`; use one of: {}",
                        $what,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum!(Dialect, "dialect",
    Dialect::Openai => "openai",
    Dialect::AzureOpenai => "azure-openai",
    Dialect::Anthropic => "anthropic",
    Dialect::OpenaiCompatible => "openai-compatible",
);
text_enum!(CheckpointKind, "checkpoint kind",
    CheckpointKind::Weights => "weights",
    CheckpointKind::Hosted => "hosted",
);
text_enum!(RotationKind, "rotation kind",
    RotationKind::Upgrade => "upgrade",
    RotationKind::Refresh => "refresh",
    RotationKind::Capacity => "capacity",
    RotationKind::Rollback => "rollback",
    RotationKind::Incident => "incident",
);
text_enum!(MismatchPolicy, "mismatch policy",
    MismatchPolicy::Flag => "flag",
    MismatchPolicy::Reject => "reject",
);
text_enum!(AnswerModel, "answer model",
    AnswerModel::Served => "served",
    AnswerModel::Requested => "requested",
);
text_enum!(Retention, "retention", Retention::Digest => "digest", Retention::Full => "full");
text_enum!(DocumentRole, "document role",
    DocumentRole::Card => "card",
    DocumentRole::Evaluation => "evaluation",
    DocumentRole::Lineage => "lineage",
    DocumentRole::Evidence => "evidence",
);

/// A stored document as entries refer to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// The file name it was stored from.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A stored document as the registry describes it; its bytes are fetched separately.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentRecord {
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// The file name it was stored from.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// What it is: `card`, `evaluation`, `lineage` or `evidence`.
    pub role: String,
    /// Its media type, guessed from the name.
    pub media_type: String,
    /// The `seq` of its `document.stored` entry.
    pub stored_seq: u64,
    /// When it was stored.
    pub stored_at: String,
}

/// Why a rotation was allowed: a stored document, a URI, or nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// A document stored in the registry.
    Document(DocumentRef),
    /// A link to evidence kept elsewhere (an evaluation report, a ticket).
    Uri(String),
}

/// A checkpoint as the registry holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckpointRecord {
    /// `sha256:<hex>` (weights) or `<provider>:<snapshot>` (hosted).
    pub id: String,
    /// Weights or hosted.
    pub kind: CheckpointKind,
    /// The provider of a hosted snapshot.
    pub provider: Option<String>,
    /// The provider's snapshot name.
    pub snapshot: Option<String>,
    /// The weight manifest of self-hosted weights, as `ascribe hash --json` prints it.
    pub manifest: Option<serde_json::Value>,
    /// The model card.
    pub card: Option<DocumentRef>,
    /// The evaluation profile.
    pub evaluation: Option<DocumentRef>,
    /// The training-data lineage.
    pub lineage: Option<DocumentRef>,
    /// A free-text note.
    pub note: Option<String>,
    /// The `seq` of its `checkpoint.registered` entry.
    pub registered_seq: u64,
    /// When it was registered.
    pub registered_at: String,
    /// Who registered it.
    pub registered_by: String,
}

/// A deployment as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeploymentRecord {
    /// Its name, unique and never reused.
    pub name: String,
    /// The checkpoint it reaches.
    pub checkpoint: String,
    /// How its upstream speaks.
    pub dialect: Dialect,
    /// The upstream's base URL.
    pub base_url: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// The served model expected back (`*` matches any run of characters).
    pub expect_served: String,
    /// The environment variable holding the provider key, if one is needed.
    pub api_key_env: Option<String>,
    /// Whether the upstream model is a moving name rather than a pinned snapshot.
    pub moving_name: bool,
    /// What the gateway keeps of bodies.
    pub retention: Retention,
    /// The `seq` of its `deployment.registered` entry.
    pub registered_seq: u64,
    /// When it was registered.
    pub registered_at: String,
    /// Who registered it.
    pub registered_by: String,
}

/// An alias as the registry holds it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AliasRecord {
    /// The name callers send as `model`.
    pub name: String,
    /// The deployment it points at now.
    pub deployment: String,
    /// Whether every rotation must carry evidence.
    pub require_evidence: bool,
    /// What the gateway does on a served-identity mismatch.
    pub on_mismatch: MismatchPolicy,
    /// Which model name answers carry.
    pub answer_model: AnswerModel,
    /// The `seq` of its `alias.created` entry.
    pub created_seq: u64,
    /// When it was created.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
}

/// The change that started a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentCause {
    /// `created` for the first segment, else the rotation kind.
    pub kind: String,
    /// Who made the change.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// With what evidence.
    pub evidence: Option<Evidence>,
    /// The `seq` of the entry that made the change.
    pub seq: u64,
}

/// A half-open interval `[from, to)` of time during which an alias pointed at one deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// The alias.
    pub alias: String,
    /// When the segment began (the time of the entry that started it).
    pub from: String,
    /// When it ended, or `None` while it is the alias's current segment.
    pub to: Option<String>,
    /// The deployment the alias pointed at.
    pub deployment: String,
    /// That deployment's checkpoint.
    pub checkpoint: String,
    /// The creation or rotation that started it.
    pub rotation: SegmentCause,
    /// The `seq` of the rotation that ended it, or `None` while it is current.
    pub end_seq: Option<u64>,
}

/// Whether `upstream_model` is a moving name for a checkpoint: a `*-latest` name, or, for a
/// hosted checkpoint, any name other than its pinned snapshot.
pub fn is_moving_name(upstream_model: &str, kind: CheckpointKind, snapshot: Option<&str>) -> bool {
    if upstream_model.ends_with("-latest") || upstream_model == "latest" {
        return true;
    }
    kind == CheckpointKind::Hosted && snapshot != Some(upstream_model)
}

/// Whether `served` matches `pattern`, where `*` stands for any run of characters.
pub fn served_matches(pattern: &str, served: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == served;
    };
    if parts.len() == 1 {
        return pattern == served;
    }
    let Some(mut rest) = served.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(position) => rest = &rest[position + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_names_are_recognised() {
        let hosted = CheckpointKind::Hosted;
        assert!(is_moving_name("gpt-4o", hosted, Some("gpt-4o-2024-08-06")));
        assert!(!is_moving_name(
            "gpt-4o-2024-08-06",
            hosted,
            Some("gpt-4o-2024-08-06")
        ));
        assert!(is_moving_name(
            "claude-3-opus-latest",
            hosted,
            Some("claude-3-opus-latest")
        ));
        assert!(!is_moving_name("smollm2", CheckpointKind::Weights, None));
        assert!(is_moving_name(
            "smollm2-latest",
            CheckpointKind::Weights,
            None
        ));
    }

    #[test]
    fn served_patterns_match() {
        assert!(served_matches("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"));
        assert!(!served_matches("gpt-4o-2024-08-06", "gpt-4o-2024-11-20"));
        assert!(served_matches("gpt-4o-*", "gpt-4o-2024-11-20"));
        assert!(served_matches("*smollm*", "models/smollm2.gguf"));
        assert!(!served_matches("a*b*c", "acb"));
        assert!(served_matches("*", ""));
    }

    #[test]
    fn words_parse_and_print() {
        assert_eq!(
            "openai-compatible".parse::<Dialect>(),
            Ok(Dialect::OpenaiCompatible)
        );
        assert_eq!(RotationKind::Incident.to_string(), "incident");
        let error = "sideways".parse::<RotationKind>().expect_err("unknown");
        assert!(
            error.contains("upgrade, refresh, capacity, rollback, incident"),
            "{error}"
        );
    }
}
