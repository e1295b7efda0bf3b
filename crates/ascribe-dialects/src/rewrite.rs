//! Returning the requested name to the caller in place of the served model, for aliases
//! whose policy says so. The served identity is recorded before this runs; only the bytes
//! the caller sees change.
//!
//! Only a `model` that disclosed something is rewritten: `null` and `""` stay as they are.
//! Everything else keeps its bytes; a body that is not JSON passes through unchanged.

use crate::json_scan::{self, Edit};
use crate::request::json_string;
use crate::Api;

/// Rewrites the top-level `model` of a whole (not streamed) response body to
/// `requested_name`. This is where every endpoint's body keeps it.
pub fn rewrite_served_model(body: &[u8], requested_name: &str) -> Vec<u8> {
    rewrite_at_path(body, &["model"], requested_name)
}

/// Rewrites the served model in the `data` of one stream event on `api`: a chunk's `model`
/// (chat completions), `response.model` (Responses envelopes), `message.model` (Anthropic's
/// `message_start`).
pub fn rewrite_served_model_in_event(api: Api, data: &[u8], requested_name: &str) -> Vec<u8> {
    rewrite_at_path(data, event_model_path(api), requested_name)
}

/// Rewrites the served model in a stream as it passes, line by line.
///
/// Each `data:` line is rewritten as one event's data; other lines (comments, `event:`,
/// blank lines, `data: [DONE]`) pass unchanged. A line is held back until its `\n` arrives.
///
/// LIMITATION: an event whose JSON is split over several `data:` lines is passed unchanged,
/// and a stream that ends lines with a lone `\r` is held back until it ends. No provider
/// recorded in the fixtures does either; handling them means rewriting whole events instead
/// of lines.
#[derive(Debug)]
pub struct ServedModelRewriter {
    api: Api,
    requested_name: String,
    line: Vec<u8>,
}

// === impl ServedModelRewriter ===

impl ServedModelRewriter {
    /// A rewriter for a stream answering a request on `api`.
    pub fn new(api: Api, requested_name: &str) -> Self {
        ServedModelRewriter {
            api,
            requested_name: requested_name.to_owned(),
            line: Vec::new(),
        }
    }

    /// The rewritten bytes of every line `bytes` completes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&byte| byte == b'\n') {
            self.line.extend_from_slice(&rest[..=end]);
            let line = std::mem::take(&mut self.line);
            out.extend_from_slice(&self.rewrite_line(&line));
            rest = &rest[end + 1..];
        }
        self.line.extend_from_slice(rest);
        out
    }

    /// The rewritten bytes of the last, unterminated line.
    pub fn finish(self) -> Vec<u8> {
        self.rewrite_line(&self.line)
    }

    fn rewrite_line(&self, line: &[u8]) -> Vec<u8> {
        let Some(data) = line.strip_prefix(b"data:") else {
            return line.to_vec();
        };
        let prefix_len = line.len() - data.len();
        let mut out = line[..prefix_len].to_vec();
        out.extend(rewrite_served_model_in_event(
            self.api,
            data,
            &self.requested_name,
        ));
        out
    }
}

fn event_model_path(api: Api) -> &'static [&'static str] {
    match api {
        Api::ChatCompletions | Api::Embeddings => &["model"],
        Api::Responses => &["response", "model"],
        Api::Messages => &["message", "model"],
    }
}

/// Rewrites every non-empty string at `path` (object keys from the top) to `name`.
fn rewrite_at_path(bytes: &[u8], path: &[&str], name: &str) -> Vec<u8> {
    // `IgnoredAny` skips strings without checking their UTF-8, so that is checked first.
    let is_json = std::str::from_utf8(bytes).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    if !is_json {
        return bytes.to_vec();
    }
    let mut edits = Vec::new();
    if let Some(members) = json_scan::top_level_members(bytes) {
        collect_edits(bytes, &members, path, &json_string(name), &mut edits);
    }
    json_scan::apply_edits(bytes, edits)
}

fn collect_edits(
    bytes: &[u8],
    members: &[json_scan::Member],
    path: &[&str],
    replacement: &[u8],
    edits: &mut Vec<Edit>,
) {
    let Some((head, tail)) = path.split_first() else {
        return;
    };
    for member in members.iter().filter(|member| member.key == *head) {
        if tail.is_empty() {
            let current = json_scan::string_value(bytes, &member.value);
            if current.is_some_and(|model| !model.trim().is_empty()) {
                edits.push((member.value.clone(), replacement.to_vec()));
            }
        } else if let Some(inner) = json_scan::object_members(bytes, member.value.start) {
            collect_edits(bytes, &inner, tail, replacement, edits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `identity` fuzz target: invalid UTF-8 in a key once let an edit through.
    #[test]
    fn bodies_that_are_not_utf8_pass_unchanged() {
        let body = b"{\"model\":\"gpt-4o\",\"x\x93\":1}";
        assert_eq!(rewrite_served_model(body, "v1"), body.to_vec());
        let json = br#"{"model":"gpt-4o","created":1e999}"#;
        let rewritten = rewrite_served_model(json, "v1");
        assert_eq!(rewritten, br#"{"model":"v1","created":1e999}"#.to_vec());
    }
}
