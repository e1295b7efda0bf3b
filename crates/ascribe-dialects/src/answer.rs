//! The text of an answer, from a whole body or a stream, so that two answers to the same
//! request can be compared whatever their framing.

use serde_json::Value;

use crate::sse::SseParser;
use crate::Api;

/// The generated text of an answer on `api`: chat `choices[0].message.content` (or the
/// concatenated `delta.content` of a stream), Anthropic `text` content blocks (or
/// `text_delta`s), Responses `output_text` parts (or `response.output_text.delta`s), and for
/// embeddings the JSON of the first vector. `None` when the body holds no answer.
pub fn answer_text(api: Api, body: &[u8]) -> Option<String> {
    if let Ok(whole) = serde_json::from_slice::<Value>(body) {
        return whole_text(api, &whole);
    }
    let mut parser = SseParser::new();
    let mut events = parser.feed(body);
    events.extend(parser.finish());
    let mut text = String::new();
    let mut any = false;
    for event in events {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        if let Some(piece) = delta_text(api, &data) {
            text.push_str(piece);
            any = true;
        }
    }
    any.then_some(text)
}

fn whole_text(api: Api, body: &Value) -> Option<String> {
    match api {
        Api::ChatCompletions => body["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_owned),
        Api::Messages => joined(body["content"].as_array()?, |block| {
            (block["type"] == "text")
                .then(|| block["text"].as_str())
                .flatten()
        }),
        Api::Responses => {
            let parts = body["output"]
                .as_array()?
                .iter()
                .filter_map(|item| item["content"].as_array());
            let parts: Vec<Value> = parts.flatten().cloned().collect();
            joined(&parts, |part| {
                (part["type"] == "output_text")
                    .then(|| part["text"].as_str())
                    .flatten()
            })
        }
        Api::Embeddings => Some(body["data"][0]["embedding"].to_string()),
    }
}

fn joined(items: &[Value], text_of: impl Fn(&Value) -> Option<&str>) -> Option<String> {
    let pieces: Vec<&str> = items.iter().filter_map(text_of).collect();
    (!pieces.is_empty()).then(|| pieces.concat())
}

fn delta_text(api: Api, data: &Value) -> Option<&str> {
    match api {
        Api::ChatCompletions => data["choices"][0]["delta"]["content"].as_str(),
        Api::Messages => (data["delta"]["type"] == "text_delta")
            .then(|| data["delta"]["text"].as_str())
            .flatten(),
        Api::Responses => (data["type"] == "response.output_text.delta")
            .then(|| data["delta"].as_str())
            .flatten(),
        Api::Embeddings => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_streamed_chat_answers_give_the_same_text() {
        let whole = br#"{"choices":[{"message":{"role":"assistant","content":"Hello there"}}]}"#;
        let stream =
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n\
            data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n\
            data: [DONE]\n\n";
        assert_eq!(
            answer_text(Api::ChatCompletions, whole).as_deref(),
            Some("Hello there")
        );
        assert_eq!(
            answer_text(Api::ChatCompletions, stream).as_deref(),
            Some("Hello there")
        );
    }

    #[test]
    fn anthropic_answers_join_their_text_blocks() {
        let whole = concat!(
            r#"{"content":[{"type":"text","text":"A"},{"type":"tool_use"},"#,
            r#"{"type":"text","text":"B"}]}"#
        )
        .as_bytes();
        assert_eq!(answer_text(Api::Messages, whole).as_deref(), Some("AB"));
        let stream = concat!(
            "event: content_block_delta\n",
            r#"data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}"#,
            "\n\n"
        )
        .as_bytes();
        assert_eq!(answer_text(Api::Messages, stream).as_deref(), Some("Hi"));
        assert_eq!(answer_text(Api::Messages, b"{}"), None);
    }
}
