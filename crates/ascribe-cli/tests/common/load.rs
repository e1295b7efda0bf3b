//! Calling the gateway as callers do: in OpenAI's or Anthropic's dialect, whole or streamed.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::HeaderMap;
use serde_json::json;

/// What callers cycle through over [`super::CHAT`], [`super::CLAUDE`] and [`super::PACED`]:
/// an alias and whether to stream, each alias both ways.
pub const MIX: &[(&str, bool)] = &[
    ("chat-v1", false),
    ("claude-v1", true),
    ("paced-v1", true),
    ("claude-v1", false),
    ("chat-v1", true),
    ("paced-v1", false),
];

/// A client whose calls give up after `timeout`.
pub fn client(timeout: Duration) -> Client {
    Client::builder().timeout(timeout).build().expect("client")
}

/// Whether `alias` is called in Anthropic's dialect (`claude*` and `anthropic*` aliases).
pub fn anthropic(alias: &str) -> bool {
    alias.starts_with("claude") || alias.starts_with("anthropic")
}

/// A call of `alias` with one user message `prompt`: Anthropic's Messages API for an
/// Anthropic alias (see [`anthropic`]), else OpenAI's chat completions.
pub fn request(
    client: &Client,
    base: &str,
    token: &str,
    alias: &str,
    stream: bool,
    prompt: &str,
) -> RequestBuilder {
    let messages = json!([{"role": "user", "content": prompt}]);
    match anthropic(alias) {
        true => client
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", token)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": alias, "max_tokens": 16, "stream": stream,
                          "messages": messages})),
        false => client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(token)
            .json(&json!({"model": alias, "stream": stream, "messages": messages})),
    }
}

/// Whether a streamed body holds its dialect's terminal event.
pub fn stream_ended(anthropic: bool, body: &str) -> bool {
    match anthropic {
        true => body.contains("event: message_stop"),
        false => body.trim_end().ends_with("data: [DONE]"),
    }
}

/// A response header, when it is text.
pub fn header(response: &Response, name: &str) -> Option<String> {
    header_in(response.headers(), name)
}

fn header_in(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// What one call got back.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as far as it was read.
    pub body: String,
    /// The body was read to its end (for a 200 stream: up to its terminal event).
    pub whole: bool,
}

impl Reply {
    /// A header, when it is text.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(&self.headers, name)
    }
}

/// Sends [`request`] with `headers` added and reads the whole body; an error only when no
/// HTTP answer came.
pub fn infer(
    client: &Client,
    base: &str,
    token: &str,
    alias: &str,
    stream: bool,
    prompt: &str,
    headers: &[(&str, &str)],
) -> reqwest::Result<Reply> {
    let mut request = request(client, base, token, alias, stream, prompt);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send()?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let (body, whole) = match response.text() {
        Ok(body) => (body, true),
        Err(_) => (String::new(), false),
    };
    let whole = whole && (!stream || status != 200 || stream_ended(anthropic(alias), &body));
    Ok(Reply {
        status,
        headers,
        body,
        whole,
    })
}
