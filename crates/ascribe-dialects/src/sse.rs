//! An incremental parser for server-sent events, fed bytes in whatever pieces the network
//! hands over.
//!
//! It follows the WHATWG event-stream rules where they matter here: lines end in `\n`, `\r\n`
//! or a lone `\r`; a line starting with `:` is a comment (OpenRouter's
//! `: OPENROUTER PROCESSING`); `field: value` loses one space after the colon; `data` lines of
//! one event are joined with `\n`; a blank line dispatches the event; a UTF-8 byte order mark
//! at the very start is dropped. Unlike a browser, [`SseParser::finish`] also dispatches an
//! event the stream ended without a blank line after, because a cut stream's last event may
//! still name the model.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event had one (Anthropic and Responses streams do).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`. Invalid UTF-8 is replaced, not rejected.
    pub data: String,
}

/// The parser's state between two pieces of input.
///
/// LIMITATION: a line is buffered until its end arrives, so memory grows with the longest
/// line. Providers send one JSON object per line; the gateway's cap on response size is
/// what bounds it. A per-line cap here would have to choose between dropping and splitting
/// a line, and both would lose identity silently.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read, without its line ending.
    line: Vec<u8>,
    /// The last piece ended in `\r`: a `\n` at the start of the next belongs to it.
    after_cr: bool,
    /// Some line has been completed, so a byte order mark is no longer expected.
    started: bool,
    /// The pending event's name.
    event: Option<String>,
    /// The pending event's data.
    data: String,
    /// The pending event had at least one `data` line.
    has_data: bool,
}

// === impl SseParser ===

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next piece of the stream and returns the events it completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = rest.iter().position(|&byte| byte == b'\n' || byte == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            self.end_line(&mut events);
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            self.after_cr = rest[end] == b'\r' && end + 1 == rest.len();
            rest = &rest[end + if crlf { 2 } else { 1 }..];
        }
        self.line.extend_from_slice(rest);
        events
    }

    /// Ends the stream: completes a last unterminated line and dispatches a pending event.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let bytes = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&bytes);
        let mut line: &str = &text;
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(events);
        } else if !line.starts_with(':') {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            self.field(field, value.strip_prefix(' ').unwrap_or(value));
        }
    }

    fn field(&mut self, field: &str, value: &str) {
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id`, `retry` and unknown fields carry nothing this crate reads.
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if std::mem::take(&mut self.has_data) {
            events.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events: Vec<SseEvent> = pieces.iter().flat_map(|p| parser.feed(p)).collect();
        events.extend(parser.finish());
        events
    }

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn all_line_endings_and_comments() {
        let events = parse_in_pieces(&[b": hello\r\n\r\nevent: a\rdata: 1\r\rdata:2\n", b"\n"]);
        assert_eq!(events, [event(Some("a"), "1"), event(None, "2")]);
    }

    #[test]
    fn crlf_split_across_pieces_is_one_line_end() {
        let events = parse_in_pieces(&[b"data: x\r", b"\ndata: y\r", b"\n\r", b"\n"]);
        assert_eq!(events, [event(None, "x\ny")]);
    }

    #[test]
    fn utf8_split_mid_character_survives() {
        let text = "data: caf\u{e9} \u{1f600}\n\n".as_bytes();
        let events = parse_in_pieces(&[&text[..10], &text[10..13], &text[13..]]);
        assert_eq!(events, [event(None, "caf\u{e9} \u{1f600}")]);
    }

    #[test]
    fn unterminated_last_event_is_dispatched_at_finish() {
        assert_eq!(
            parse_in_pieces(&[b"data: {\"a\":1}"]),
            [event(None, "{\"a\":1}")]
        );
        assert_eq!(parse_in_pieces(&[b"event: x\n\n"]), []);
    }

    #[test]
    fn byte_order_mark_is_dropped_once() {
        let events = parse_in_pieces(&["\u{feff}data: a\n\n".as_bytes()]);
        assert_eq!(events, [event(None, "a")]);
    }
}
