//! `Event` and the SSE wire format (WHATWG HTML, "Server-sent events"): pure functions, no I/O.
//!
//! Everything a client receives is built here, once per event; a channel shares the resulting
//! `Bytes` with every stream, and the server only forwards them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// One event as a source produces it. `event` and `id` are validated on the way in
/// ([`Event::with_event`], [`Event::with_id`]), so encoding can never fail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    event: Option<EventName>,
    id: Option<String>,
    data: String,
    retry: Option<Duration>,
}

/// Why a value can't go into an `event:` or `id:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// CR or LF would end the field early and let the rest be read as another field.
    LineBreak(&'static str),
    /// A browser ignores an `id:` holding NUL, so a reconnect would resume from the wrong place.
    NulInId,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::LineBreak(field) => write!(f, "the {field} contains a line break"),
            FieldError::NulInId => f.write_str("the id contains a NUL character"),
        }
    }
}

impl std::error::Error for FieldError {}

impl Event {
    /// An event carrying `data`; a payload with line breaks goes out as several `data:` lines.
    pub fn new(data: impl Into<String>) -> Self {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    /// Sets the event type (`event:`), which a browser dispatches to `addEventListener(name)`.
    pub fn with_event(mut self, name: EventName) -> Self {
        self.event = Some(name);
        self
    }

    /// Sets the id instead of the channel's sequence number (JSON input may carry its own).
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self, FieldError> {
        let id = id.into();
        if has_line_break(&id) {
            return Err(FieldError::LineBreak("id"));
        }
        if id.contains('\0') {
            return Err(FieldError::NulInId);
        }
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the reconnection delay this event asks of the client (`retry:`).
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The id this event was given by its source, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event type, if set.
    pub fn event_name(&self) -> Option<&EventName> {
        self.event.as_ref()
    }

    pub fn data(&self) -> &str {
        &self.data
    }

    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The complete frame, ending with the blank line that makes the client dispatch it.
    /// `default_id` (the channel's sequence number) is used unless the event carries its own id.
    pub fn encode(&self, default_id: u64) -> Bytes {
        let mut out = String::with_capacity(self.data.len() + 48);
        if let Some(name) = &self.event {
            push_field(&mut out, "event", name.as_str());
        }
        match &self.id {
            Some(id) => push_field(&mut out, "id", id),
            // Ids are formatted once per event: no allocation for the digits.
            None => push_field(&mut out, "id", itoa::Buffer::new().format(default_id)),
        }
        if let Some(retry) = self.retry {
            push_field(&mut out, "retry", &retry.as_millis().to_string());
        }
        // Always "data: " with the space: a client strips exactly one, so a leading space survives.
        for line in lines(&self.data) {
            push_field(&mut out, "data", line);
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// A checked event type (no line break), cheap to clone onto every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName(Arc<str>);

impl FromStr for EventName {
    type Err = FieldError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if has_line_break(name) {
            return Err(FieldError::LineBreak("event name"));
        }
        Ok(EventName(Arc::from(name)))
    }
}

impl EventName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A comment frame (`: text`), which every client ignores: used for notices such as a replay gap.
/// A comment is its own frame (ending in a blank line) so it never merges into a following event.
pub fn comment(text: &str) -> Bytes {
    let mut out = String::with_capacity(text.len() + 4);
    for line in lines(text) {
        push_field(&mut out, "", line);
    }
    out.push('\n');
    Bytes::from(out)
}

/// Appends `frame` (as `Event::encode` wrote it, maybe after comment frames) to `out` with its
/// `id:` field set to `id`: a stream of several channels gives each event its own cursor as
/// id. Every other byte stays as encoded; a frame without an `id:` line before its data gets
/// one in front. Written straight into the stream's batch: the stored frame is shared, never
/// copied whole to change one line.
pub fn put_with_id(out: &mut BytesMut, frame: &[u8], id: &str) {
    // Lines before the data are comments, blank lines ending them, `event:` and `id:`; a data
    // line can never be taken for the id, since the search stops at the first one.
    let mut start = 0;
    let (mut before, mut after) = (frame.len(), frame.len());
    while start < frame.len() {
        let end = frame[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(frame.len(), |i| start + i + 1);
        let line = &frame[start..end];
        if line.starts_with(b"id: ") {
            (before, after) = (start, end);
            break;
        }
        if line.starts_with(b"data: ") || line.starts_with(b"retry: ") {
            (before, after) = (start, start);
            break;
        }
        start = end;
    }
    out.reserve(frame.len() + id.len() + 5);
    out.extend_from_slice(&frame[..before]);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(&frame[after..]);
}

/// The heartbeat: an empty comment. It keeps proxies from closing a quiet stream and dispatches
/// nothing in a browser.
pub const HEARTBEAT: &[u8] = b":\n\n";

/// A frame that only sets the client's reconnection delay.
pub fn retry(delay: Duration) -> Bytes {
    Bytes::from(format!("retry: {}\n\n", delay.as_millis()))
}

fn push_field(out: &mut String, field: &str, value: &str) {
    out.push_str(field);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

fn has_line_break(text: &str) -> bool {
    text.contains(['\r', '\n'])
}

/// Splits on "\r\n", "\n" and a lone "\r", the three line ends an EventSource accepts.
/// A trailing line end yields a final empty line, so the client sees it as `\n`.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        let Some(i) = s.find(['\r', '\n']) else {
            rest = None;
            return Some(s);
        };
        let end_len = if s[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = Some(&s[i + end_len..]);
        Some(&s[..i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(event: &Event, id: u64) -> String {
        String::from_utf8(event.encode(id).to_vec()).unwrap()
    }

    #[test]
    fn encodes_each_line_end_as_a_data_line() {
        let table = [
            ("plain", "id: 1\ndata: plain\n\n"),
            ("a\nb", "id: 1\ndata: a\ndata: b\n\n"),
            ("a\r\nb", "id: 1\ndata: a\ndata: b\n\n"),
            ("a\rb", "id: 1\ndata: a\ndata: b\n\n"),
            ("a\r\r\nb", "id: 1\ndata: a\ndata: \ndata: b\n\n"),
            ("trailing\n", "id: 1\ndata: trailing\ndata: \n\n"),
            (" lead", "id: 1\ndata:  lead\n\n"),
            ("data: x", "id: 1\ndata: data: x\n\n"),
            (": c", "id: 1\ndata: : c\n\n"),
            ("", "id: 1\ndata: \n\n"),
        ];
        for (data, wire) in table {
            assert_eq!(encoded(&Event::new(data), 1), wire, "data {data:?}");
        }
    }

    #[test]
    fn encodes_event_id_and_retry_fields() {
        let event = Event::new("x")
            .with_event("price".parse().unwrap())
            .with_id("abc")
            .unwrap()
            .with_retry(Duration::from_millis(1500));
        assert_eq!(
            encoded(&event, 9),
            "event: price\nid: abc\nretry: 1500\ndata: x\n\n"
        );
    }

    #[test]
    fn rejects_fields_that_would_break_the_frame() {
        assert_eq!(
            "a\nb".parse::<EventName>(),
            Err(FieldError::LineBreak("event name"))
        );
        assert_eq!(
            Event::new("x").with_id("a\rb"),
            Err(FieldError::LineBreak("id"))
        );
        assert_eq!(Event::new("x").with_id("a\0b"), Err(FieldError::NulInId));
    }

    #[test]
    fn with_id_replaces_only_the_id_line() {
        let table: [(&[u8], &str); 4] = [
            (b"id: 7\ndata: id: 8\n\n", "id: a:7,b:0\ndata: id: 8\n\n"),
            (
                b"event: stage\nid: given\nretry: 5\ndata: x\n\n",
                "event: stage\nid: a:7,b:0\nretry: 5\ndata: x\n\n",
            ),
            (
                b": 2 events lost\n\nid: 9\ndata: x\n\n",
                ": 2 events lost\n\nid: a:7,b:0\ndata: x\n\n",
            ),
            (b"data: x\n\n", "id: a:7,b:0\ndata: x\n\n"),
        ];
        let mut out = BytesMut::from(&b"before\n"[..]);
        for (frame, wire) in table {
            out.truncate(7);
            put_with_id(&mut out, frame, "a:7,b:0");
            assert_eq!(&out[7..], wire.as_bytes());
        }
    }

    #[test]
    fn comments_and_retry_frames() {
        assert_eq!(&comment("missed 3 events")[..], b": missed 3 events\n\n");
        assert_eq!(&comment("a\nb")[..], b": a\n: b\n\n");
        assert_eq!(&retry(Duration::from_secs(3))[..], b"retry: 3000\n\n");
    }
}
