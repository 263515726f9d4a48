//! The event stream as WHATWG's EventSource reads it, byte for byte ("Interpreting an event
//! stream", HTML §9.2.6): one parser per connection, fed the body's chunks as they come.
//!
//! Written here rather than taken from eventsource-stream 0.2.3 (the tests read with it as the
//! third-party oracle), which differs from a browser where a script would notice: invalid UTF-8
//! is an error that ends its stream (a browser decodes it to U+FFFD); `retry: +5` is taken as
//! 5 ms (Rust's integer parse allows the sign, the spec only ASCII digits); an event ended by a
//! lone CR at the end of a read waits for the next byte to be dispatched; a block with an `id:`
//! but no data does not move its last event id (the spec moves it at every dispatch, so the
//! next reconnect would resend an older id); and a new stream does not start from the id a
//! reconnect resumed from, so the first events without an `id:` line report "".

use memchr::{memchr, memchr2};

const BOM: &[u8] = "\u{feff}".as_bytes();

/// One dispatched event, as a browser's `MessageEvent` would carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub data: String,
    /// The `event:` name; `None` for an unnamed event (a browser's type `message`).
    pub event: Option<String>,
    /// The last event id at dispatch: the latest `id:` seen so far, on this connection or
    /// before it (a browser's `lastEventId`).
    pub id: String,
    /// The `retry:` this event's block carried, in milliseconds.
    pub retry: Option<u64>,
}

/// The parser's state between chunks.
#[derive(Debug)]
pub struct Parser {
    /// The current line's bytes when it spans chunks.
    partial: Vec<u8>,
    /// The last chunk ended with CR: a LF starting the next one belongs to it.
    after_cr: bool,
    /// No line completed yet: a BOM at its start is dropped (UTF-8 decode drops one).
    first_line: bool,
    data: String,
    event: String,
    id_buffer: String,
    last_id: String,
    /// The block's `retry:`, reported with its event.
    block_retry: Option<u64>,
    /// The latest valid `retry:`, in milliseconds.
    reconnection_time: Option<u64>,
}

impl Parser {
    /// A parser for a new connection that resumed from `last_id`.
    pub fn new(last_id: String) -> Self {
        Parser {
            partial: Vec::new(),
            after_cr: false,
            first_line: true,
            data: String::new(),
            event: String::new(),
            id_buffer: last_id.clone(),
            last_id,
            block_retry: None,
            reconnection_time: None,
        }
    }

    /// The last event id string: what a reconnect sends as `Last-Event-ID`.
    pub fn last_id(&self) -> &str {
        &self.last_id
    }

    /// The latest `retry:` the stream sent, in milliseconds.
    pub fn reconnection_time(&self) -> Option<u64> {
        self.reconnection_time
    }

    /// Parses one chunk of the body, pushing the events it completes onto `out`. What is left
    /// of an event when the stream ends is dropped, as the spec says.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Event>) {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while let Some(end) = memchr2(b'\r', b'\n', chunk) {
            if self.partial.is_empty() {
                self.line(&chunk[..end], out);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[..end]);
                self.line(&line, out);
                line.clear();
                self.partial = line; // keeps its allocation for the next long line
            }
            let cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if cr {
                match chunk.first() {
                    None => self.after_cr = true,
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                }
            }
        }
        self.partial.extend_from_slice(chunk);
    }

    fn line(&mut self, mut line: &[u8], out: &mut Vec<Event>) {
        if std::mem::take(&mut self.first_line) {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch(out);
        }
        let (field, value) = match memchr(b':', line) {
            Some(0) => return, // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" if !value.contains(&0) => {
                self.id_buffer = String::from_utf8_lossy(value).into_owned();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Digits past u64 are still "only ASCII digits": the longest wait there is.
                let ms = std::str::from_utf8(value)
                    .ok()
                    .and_then(|digits| digits.parse().ok())
                    .unwrap_or(u64::MAX);
                self.reconnection_time = Some(ms);
                self.block_retry = Some(ms);
            }
            _ => {} // other fields, an `id` holding NUL, a `retry` that is not digits: ignored
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        self.last_id.clone_from(&self.id_buffer);
        let retry = self.block_retry.take();
        let name = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return; // no data line: nothing is dispatched, but the id has moved
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF after the last data line
        out.push(Event {
            data,
            event: (!name.is_empty()).then_some(name),
            id: self.last_id.clone(),
            retry,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(last_id: &str, chunks: &[&[u8]]) -> (Vec<Event>, Parser) {
        let mut parser = Parser::new(last_id.to_owned());
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        (out, parser)
    }

    fn event(data: &str, event: Option<&str>, id: &str, retry: Option<u64>) -> Event {
        Event {
            data: data.into(),
            event: event.map(Into::into),
            id: id.into(),
            retry,
        }
    }

    /// Every split of `bytes` into two chunks parses as the whole does.
    fn same_at_every_split(bytes: &[u8]) -> Vec<Event> {
        let (whole, _) = parse_chunks("", &[bytes]);
        for at in 0..=bytes.len() {
            let (split, _) = parse_chunks("", &[&bytes[..at], &bytes[at..]]);
            assert_eq!(split, whole, "split at {at}");
        }
        whole
    }

    #[test]
    fn line_ends_bom_and_fields() {
        let stream = b"\xef\xbb\xbfdata: a\r\rdata:b\r\ndata\r\n\r\nevent: x\nid: 7\nretry: 250\ndata:  two\ndata: lines\n\n: comment\nid\ndata: after\n\n";
        assert_eq!(
            same_at_every_split(stream),
            [
                event("a", None, "", None),
                event("b\n", None, "", None),
                event(" two\nlines", Some("x"), "7", Some(250)),
                event("after", None, "", None),
            ]
        );
    }

    #[test]
    fn ignored_fields_and_undispatched_blocks() {
        let stream = b"id: a\0b\nretry: +5\nretry: 1s\nretry:\nfoo: bar\ndata: one\n\nevent: lost\n\ndata: two\n\nid: 9\n\ndata: cut";
        let (events, parser) = parse_chunks("3", &[stream]);
        assert_eq!(
            events,
            [event("one", None, "3", None), event("two", None, "3", None)]
        );
        assert_eq!(parser.reconnection_time(), None);
        assert_eq!(parser.last_id(), "9", "an id-only block moves the id");
    }

    #[test]
    fn a_bom_counts_only_at_the_start_and_bad_utf8_is_replaced() {
        let (events, _) = parse_chunks(
            "",
            &[
                b"\xef\xbb",
                b"\xbf\xef\xbb\xbfdata: x\n\ndata: \xff\xe2\x82\n\n",
            ],
        );
        // The second BOM is part of the first line's field name, which is then unknown.
        assert_eq!(events, [event("\u{fffd}\u{fffd}", None, "", None)]);
    }

    #[test]
    fn an_event_ended_by_a_lone_cr_is_dispatched_at_once() {
        let mut parser = Parser::new(String::new());
        let mut out = Vec::new();
        parser.feed(b"data: now\r\r", &mut out);
        assert_eq!(out, [event("now", None, "", None)]);
        parser.feed(b"\ndata: next\n\n", &mut out);
        assert_eq!(out.len(), 2, "the LF after the CR ends nothing");
    }

    #[test]
    fn retry_keeps_digits_beyond_u64_as_the_longest() {
        let (_, parser) = parse_chunks("", &[b"retry: 99999999999999999999999\n"]);
        assert_eq!(parser.reconnection_time(), Some(u64::MAX));
    }
}
