//! Reading a caller's request body and writing the body that goes upstream.

use serde_json::{Map, Value};

use crate::json_scan::{self, Edit, Member};
use crate::{Api, Error};

/// The deepest nesting of arrays and objects a request body may have.
///
/// Chat requests with tool schemas stay far below it. It sits under `serde_json`'s own limit
/// (127) so that a caller gets this crate's message, which names the limit.
pub const MAX_NESTING_DEPTH: usize = 100;

/// The key under `metadata` that carries the caller's decision reference.
pub const DECISION_METADATA_KEY: &str = "ascribe_decision";

/// A caller's inference request, read just enough to route and record it.
///
/// It keeps the caller's bytes: [`InferenceRequest::upstream_body`] edits them in place, so
/// every field the gateway does not own reaches the upstream exactly as the caller sent it.
#[derive(Clone, Debug)]
pub struct InferenceRequest {
    api: Api,
    model: String,
    stream: bool,
    decision_reference: Option<String>,
    body: Vec<u8>,
}

/// Reads a request body that arrived on `api`.
///
/// The body must be a JSON object no deeper than [`MAX_NESTING_DEPTH`], whose `model` is a
/// non-empty string (the alias). `stream` is optional (`null` counts as absent) and must be a
/// boolean. `metadata`, if present and not `null`, must be an object; its
/// `ascribe_decision` member, if present and not `null` or empty, must be a string and
/// becomes the decision reference. The same key is read on every endpoint, Anthropic's
/// included, and is always removed before the body goes upstream. `stream`, `metadata` and
/// `metadata.ascribe_decision` may each appear once: sent twice, the gateway and an
/// upstream could each act on a different one. (`model` may repeat: every copy is
/// rewritten.)
pub fn parse_request(api: Api, body: &[u8]) -> Result<InferenceRequest, Error> {
    if json_scan::nesting_depth(body) > MAX_NESTING_DEPTH {
        return Err(Error::TooDeep {
            limit: MAX_NESTING_DEPTH,
        });
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|source| Error::InvalidJson { source })?;
    let Value::Object(object) = value else {
        return Err(Error::NotAnObject {
            found: json_type(&value),
        });
    };

    refuse_duplicates(body)?;
    let model = read_model(&object)?;
    let stream = read_stream(&object)?;
    if stream && api == Api::Embeddings {
        return Err(Error::StreamNotSupported { api });
    }
    let decision_reference = read_decision_reference(&object)?;
    Ok(InferenceRequest {
        api,
        model,
        stream,
        decision_reference,
        body: body.to_vec(),
    })
}

// === impl InferenceRequest ===

impl InferenceRequest {
    /// The endpoint the request arrived on.
    pub fn api(&self) -> Api {
        self.api
    }

    /// The requested `model`: the alias, or a pinned checkpoint id.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether the caller asked for a stream.
    pub fn stream(&self) -> bool {
        self.stream
    }

    /// The caller's decision reference from `metadata.ascribe_decision`, if it sent one.
    /// The `Ascribe-Decision` header is the gateway's to read.
    pub fn decision_reference(&self) -> Option<&str> {
        self.decision_reference.as_deref()
    }

    /// The body exactly as the caller sent it, for its digest.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body to send upstream: every top-level `model` set to `upstream_model`, and
    /// `metadata.ascribe_decision` removed, `metadata` with it if nothing else was in it.
    ///
    /// Everything else keeps the caller's bytes. In particular `stream_options` is left as
    /// the caller wrote it: usage is only in a chat stream if the caller asked for it.
    pub fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        match json_scan::top_level_members(&self.body) {
            Some(members) => edit_body(&self.body, &members, upstream_model),
            // The body parsed as an object, so the scanner cannot fail on it; rebuilding is
            // only a safety net and loses the caller's key order.
            None => rebuild_body(&self.body, upstream_model),
        }
    }
}

fn edit_body(body: &[u8], members: &[Member], upstream_model: &str) -> Vec<u8> {
    let model_bytes = json_string(upstream_model);
    let mut edits: Vec<Edit> = members
        .iter()
        .filter(|member| member.key == "model")
        .map(|member| (member.value.clone(), model_bytes.clone()))
        .collect();

    let mut emptied_metadata = Vec::new();
    for member in members.iter().filter(|member| member.key == "metadata") {
        match metadata_edits(body, member) {
            MetadataEdit::Keep => {}
            MetadataEdit::Cut(ranges) => edits.extend(ranges.into_iter().map(|r| (r, Vec::new()))),
            MetadataEdit::Drop => emptied_metadata.push(member.start),
        }
    }
    let dropped = json_scan::removal_ranges(members, |m| emptied_metadata.contains(&m.start));
    edits.extend(dropped.into_iter().map(|range| (range, Vec::new())));
    json_scan::apply_edits(body, edits)
}

/// What happens to one `metadata` member.
enum MetadataEdit {
    /// It has no decision reference.
    Keep,
    /// Cut these ranges out of it.
    Cut(Vec<std::ops::Range<usize>>),
    /// It held only the decision reference: drop the whole member.
    Drop,
}

fn metadata_edits(body: &[u8], metadata: &Member) -> MetadataEdit {
    let Some(inner) = json_scan::object_members(body, metadata.value.start) else {
        return MetadataEdit::Keep;
    };
    let is_decision = |member: &Member| member.key == DECISION_METADATA_KEY;
    if !inner.iter().any(is_decision) {
        MetadataEdit::Keep
    } else if inner.iter().all(is_decision) {
        MetadataEdit::Drop
    } else {
        MetadataEdit::Cut(json_scan::removal_ranges(&inner, is_decision))
    }
}

fn rebuild_body(body: &[u8], upstream_model: &str) -> Vec<u8> {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    object.insert("model".to_owned(), Value::String(upstream_model.to_owned()));
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        if metadata.remove(DECISION_METADATA_KEY).is_some() && metadata.is_empty() {
            object.remove("metadata");
        }
    }
    serde_json::to_vec(&object).unwrap_or_else(|_| body.to_vec())
}

/// Refuses a body that sends a member the gateway acts on, and does not rewrite, twice.
fn refuse_duplicates(body: &[u8]) -> Result<(), Error> {
    let Some(members) = json_scan::top_level_members(body) else {
        return Ok(());
    };
    let twice = |members: &[Member], name: &str| {
        members.iter().filter(|member| member.key == name).count() > 1
    };
    for name in ["stream", "metadata"] {
        if twice(&members, name) {
            return Err(Error::DuplicateMember { name });
        }
    }
    for metadata in members.iter().filter(|member| member.key == "metadata") {
        let inner = json_scan::object_members(body, metadata.value.start).unwrap_or_default();
        if twice(&inner, DECISION_METADATA_KEY) {
            return Err(Error::DuplicateMember {
                name: "metadata.ascribe_decision",
            });
        }
    }
    Ok(())
}

fn read_model(object: &Map<String, Value>) -> Result<String, Error> {
    match object.get("model") {
        None => Err(Error::MissingModel),
        Some(Value::String(model)) if model.is_empty() => Err(Error::EmptyModel),
        Some(Value::String(model)) => Ok(model.clone()),
        Some(other) => Err(Error::ModelNotString {
            found: json_type(other),
        }),
    }
}

fn read_stream(object: &Map<String, Value>) -> Result<bool, Error> {
    match object.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(stream)) => Ok(*stream),
        Some(other) => Err(Error::StreamNotBool {
            found: json_type(other),
        }),
    }
}

fn read_decision_reference(object: &Map<String, Value>) -> Result<Option<String>, Error> {
    let metadata = match object.get("metadata") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(metadata)) => metadata,
        Some(other) => {
            return Err(Error::MetadataNotObject {
                found: json_type(other),
            })
        }
    };
    match metadata.get(DECISION_METADATA_KEY) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(reference)) if reference.is_empty() => Ok(None),
        Some(Value::String(reference)) => Ok(Some(reference.clone())),
        Some(other) => Err(Error::DecisionNotString {
            found: json_type(other),
        }),
    }
}

/// `text` as a JSON string literal.
pub(crate) fn json_string(text: &str) -> Vec<u8> {
    Value::String(text.to_owned()).to_string().into_bytes()
}

/// The JSON type of `value`, as error messages name it.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_the_gateway_acts_on_are_refused_twice() {
        let cases = [
            (r#"{"model":"v1","stream":false,"stream":true}"#, "stream"),
            (r#"{"model":"v1","metadata":{},"metadata":{}}"#, "metadata"),
            (
                r#"{"model":"v1","metadata":{"ascribe_decision":"a","ascribe\u005fdecision":"b"}}"#,
                "metadata.ascribe_decision",
            ),
        ];
        for (body, member) in cases {
            let error = parse_request(Api::ChatCompletions, body.as_bytes()).err();
            assert!(
                matches!(error, Some(Error::DuplicateMember { name }) if name == member),
                "{body}: {error:?}"
            );
        }
        let twice = parse_request(Api::ChatCompletions, br#"{"model":"a","model":"v1"}"#);
        assert_eq!(
            twice.map(|request| request.model().to_owned()).ok(),
            Some("v1".into())
        );
    }
}
