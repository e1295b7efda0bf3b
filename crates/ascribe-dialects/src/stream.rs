//! Watching a streamed answer go by: its served identity, and how it ended.
//!
//! Where each dialect puts things in a stream:
//!
//! - Chat completions: every chunk carries `model` (Azure's first, prompt-filter chunk has
//!   `""`). The stream ends with `[DONE]`; a chunk with a `finish_reason` also counts as the
//!   end of the answer. Usage is a chunk's non-null `usage` (Groq's legacy `x_groq.usage`).
//!   An `error` object in a chunk is an error under HTTP 200 (OpenRouter).
//! - Responses: the `response` object of `response.created`, `.in_progress`, `.completed`
//!   (and `.failed`, `.incomplete`) carries `model` and `usage`. `response.completed` and
//!   `response.incomplete` end it; `response.failed` and `error` events are errors.
//! - Messages: only `message_start` carries `model`, inside `message`, with the first usage;
//!   `message_delta` brings `stop_reason` and cumulative usage; `message_stop` ends it. An
//!   `event: error` is an error, after which Anthropic closes without `message_stop`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::sse::{SseEvent, SseParser};
use crate::{Api, IdentitySource, ServedIdentity, Upstream};

/// Watches the bytes of one streamed response as the gateway forwards them.
///
/// The gateway feeds every byte it receives, in the pieces it receives them, waits for
/// [`StreamObserver::identity_ready`] before it forwards the first byte (the identity is
/// recorded first), and calls [`StreamObserver::finish`] when the upstream closes.
#[derive(Debug)]
pub struct StreamObserver {
    api: Api,
    parser: SseParser,
    identity: ServedIdentity,
    usage: Option<Value>,
    finish_reason: Option<String>,
    completed: bool,
    error: Option<String>,
    /// An event that carries the served model has been seen.
    model_event_seen: bool,
    /// A terminal or error event has been seen: nothing more will name the model.
    ended: bool,
    hasher: Sha256,
    n_bytes: u64,
}

/// How a stream went, once it is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOutcome {
    /// Everything the headers and events said about what was served.
    pub identity: ServedIdentity,
    /// The last usage object the stream carried; `None` if it carried none (an OpenAI chat
    /// stream carries usage only when the caller set `stream_options.include_usage`).
    pub usage: Option<Value>,
    /// The last finish reason: chat `finish_reason`, Anthropic `stop_reason`, Responses
    /// `incomplete_details.reason` or else `status`.
    pub finish_reason: Option<String>,
    /// A terminal event was seen (see the module table). `false` means the stream was cut.
    pub completed: bool,
    /// An error event arrived inside the stream: `type: message`, or the raw JSON.
    pub error: Option<String>,
    /// SHA-256 of every byte fed, lowercase hex.
    pub body_sha256: String,
    /// How many bytes were fed.
    pub n_bytes: u64,
}

// === impl StreamObserver ===

impl StreamObserver {
    /// Starts watching a stream that answers a request on `api`, given the response headers.
    pub fn new(api: Api, upstream: Upstream, headers: &[(String, String)]) -> Self {
        StreamObserver {
            api,
            parser: SseParser::new(),
            identity: ServedIdentity::from_headers(upstream, headers),
            usage: None,
            finish_reason: None,
            completed: false,
            error: None,
            model_event_seen: false,
            ended: false,
            hasher: Sha256::new(),
            n_bytes: 0,
        }
    }

    /// Reads the next piece of the stream, however it was split.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.n_bytes += bytes.len() as u64;
        for event in self.parser.feed(bytes) {
            self.observe(&event);
        }
    }

    /// The identity as known so far.
    pub fn identity(&self) -> &ServedIdentity {
        &self.identity
    }

    /// Whether the identity is worth recording: an event that carries the served model has
    /// been seen, or the stream has ended (terminal or error event) without one.
    ///
    /// A served-model header alone does not make it ready: the first event also brings the
    /// fingerprint, and it arrives before any byte could be forwarded anyway.
    pub fn identity_ready(&self) -> bool {
        self.model_event_seen || self.ended
    }

    /// Ends the stream: reads what is left in the buffer and says how it went.
    pub fn finish(mut self) -> StreamOutcome {
        for event in self.parser.finish() {
            self.observe(&event);
        }
        StreamOutcome {
            identity: self.identity,
            usage: self.usage,
            finish_reason: self.finish_reason,
            completed: self.completed,
            error: self.error,
            body_sha256: hex::encode(self.hasher.finalize()),
            n_bytes: self.n_bytes,
        }
    }

    fn observe(&mut self, event: &SseEvent) {
        match self.api {
            Api::ChatCompletions | Api::Embeddings => self.observe_chat(&event.data),
            Api::Responses => self.observe_responses(event),
            Api::Messages => self.observe_messages(event),
        }
    }

    fn observe_chat(&mut self, data: &str) {
        if data.trim() == "[DONE]" {
            self.completed = true;
            self.ended = true;
            return;
        }
        let Some(chunk) = parse_object(data) else {
            return;
        };
        self.absorb_identity(&chunk);

        let usage = chunk
            .get("usage")
            .or_else(|| chunk.get("x_groq")?.get("usage"));
        if let Some(usage) = usage.filter(|usage| usage.is_object()) {
            self.usage = Some(usage.clone());
        }
        if let Some(reason) = chat_finish_reason(&chunk) {
            self.finish_reason = Some(reason.to_owned());
            self.completed = true;
        }
        if let Some(error) = chunk.get("error").filter(|error| !error.is_null()) {
            self.fail(error);
        }
    }

    fn observe_responses(&mut self, event: &SseEvent) {
        let Some(payload) = parse_object(&event.data) else {
            return;
        };
        match event_type(&payload, event) {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.observe_response_envelope(&payload);
            }
            "response.completed" | "response.incomplete" => {
                self.observe_response_envelope(&payload);
                self.completed = true;
                self.ended = true;
            }
            "response.failed" => {
                self.observe_response_envelope(&payload);
                let error = payload
                    .get("response")
                    .and_then(|response| response.get("error"));
                let unexplained = Value::from("response.failed");
                self.fail(
                    error
                        .filter(|error| !error.is_null())
                        .unwrap_or(&unexplained),
                );
            }
            "error" => {
                let mut error = payload;
                error.remove("type");
                self.fail(&Value::Object(error));
            }
            _ => {}
        }
    }

    fn observe_response_envelope(&mut self, payload: &Map<String, Value>) {
        let Some(response) = payload.get("response").and_then(Value::as_object) else {
            return;
        };
        self.absorb_identity(response);
        if let Some(usage) = response.get("usage").filter(|usage| usage.is_object()) {
            self.usage = Some(usage.clone());
        }
        let incomplete = response
            .get("incomplete_details")
            .and_then(|d| d.get("reason"));
        let reason = incomplete
            .or_else(|| response.get("status"))
            .and_then(Value::as_str);
        if let Some(reason) = reason.filter(|reason| !reason.is_empty()) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn observe_messages(&mut self, event: &SseEvent) {
        let Some(payload) = parse_object(&event.data) else {
            return;
        };
        match event_type(&payload, event) {
            "message_start" => {
                let Some(message) = payload.get("message").and_then(Value::as_object) else {
                    return;
                };
                self.absorb_identity(message);
                if let Some(usage) = message.get("usage").filter(|usage| usage.is_object()) {
                    self.usage = Some(usage.clone());
                }
            }
            "message_delta" => self.observe_message_delta(&payload),
            "message_stop" => {
                self.completed = true;
                self.ended = true;
            }
            "error" => self.fail(payload.get("error").unwrap_or(&Value::Null)),
            _ => {}
        }
    }

    fn observe_message_delta(&mut self, payload: &Map<String, Value>) {
        let stop_reason = payload
            .get("delta")
            .and_then(|delta| delta.get("stop_reason"));
        if let Some(reason) = stop_reason.and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        // `message_delta` usage is cumulative: its keys replace those of `message_start`.
        let Some(delta_usage) = payload.get("usage").and_then(Value::as_object) else {
            return;
        };
        let mut usage = match self.usage.take() {
            Some(Value::Object(usage)) => usage,
            _ => Map::new(),
        };
        usage.extend(
            delta_usage
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        self.usage = Some(Value::Object(usage));
    }

    fn absorb_identity(&mut self, object: &Map<String, Value>) {
        if self.identity.absorb(object, IdentitySource::Stream) {
            self.model_event_seen = true;
        }
    }

    fn fail(&mut self, error: &Value) {
        self.error = Some(describe_error(error));
        self.ended = true;
    }
}

fn parse_object(data: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(data) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// The payload's `type`, else the SSE `event:` name.
fn event_type<'a>(payload: &'a Map<String, Value>, event: &'a SseEvent) -> &'a str {
    let kind = payload.get("type").and_then(Value::as_str);
    kind.or(event.event.as_deref()).unwrap_or("")
}

fn chat_finish_reason(chunk: &Map<String, Value>) -> Option<&str> {
    let choices = chunk.get("choices")?.as_array()?;
    let mut reasons = choices
        .iter()
        .filter_map(|choice| choice.get("finish_reason")?.as_str());
    reasons.rfind(|reason| !reason.is_empty())
}

/// `type: message` (or `code: message`) for an error object, the text of a string, the raw
/// JSON otherwise.
fn describe_error(error: &Value) -> String {
    if let Value::String(text) = error {
        return text.clone();
    }
    let message = error.get("message").and_then(Value::as_str);
    let kind = error
        .get("type")
        .or_else(|| error.get("code"))
        .filter(|kind| !kind.is_null());
    match (kind, message) {
        (Some(Value::String(kind)), Some(message)) => format!("{kind}: {message}"),
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (None, Some(message)) => message.to_owned(),
        _ => error.to_string(),
    }
}
