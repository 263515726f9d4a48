//! Decoding input lines, for stdin (`source/stdin/`) and POST bodies (`routes/publish.rs`)
//! alike: a text line is an event's data; a JSON line carries data, event, id, retry and
//! channel. What cannot be used is skipped with a warning naming the line (stdin) or refused (a
//! POST). Flags are `cli`'s: it maps `--format` onto `Format`.

use std::time::Duration;

use serde::Deserialize;

use crate::channels::ChannelName;
use crate::event::{Event, EventName};
use crate::throttle::{SharedThrottle, WARNING_PERIOD};

/// One piece of input: a whole line (with its `\n`), the last piece of a line, or a piece of
/// at most `max_line_bytes` of a longer one.
pub type Piece = Vec<u8>;

/// How lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Each line is the data of one event.
    Text,
    /// Each line is a JSON object: {"data": ..., "event"?, "id"?, "retry"? (ms)}.
    Json,
}

/// One JSON input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    data: serde_json::Value,
    event: Option<String>,
    /// The channel to publish to, instead of `--channel` (stdin) or the URL's (POST).
    channel: Option<String>,
    /// A string, or a number (ids counted by a producer, e.g. `jq -c '{data: .msg, id: .n}'`).
    id: Option<JsonId>,
    /// Reconnection delay in milliseconds.
    retry: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JsonId {
    Text(String),
    Number(serde_json::Number),
}

impl JsonId {
    fn into_string(self) -> String {
        match self {
            JsonId::Text(text) => text,
            JsonId::Number(number) => number.to_string(),
        }
    }
}

/// A decoded line: its event, and the channel a JSON line named, if any.
#[derive(Debug)]
pub struct Routed {
    pub channel: Option<ChannelName>,
    pub event: Event,
}

/// Turns pieces into events, warning (with the line number) about what it has to change or skip.
#[derive(Debug)]
pub struct LineDecoder {
    format: Format,
    event: Option<EventName>,
    max_line_bytes: usize,
    /// Lines completed so far; the current line's number is `line + 1`.
    line: u64,
    /// The current line is longer than `max_line_bytes` and arrives in pieces.
    in_long_line: bool,
    /// Bytes of a UTF-8 character cut by a piece boundary, kept for the next piece.
    carry: Vec<u8>,
}

impl LineDecoder {
    pub fn new(format: Format, event: Option<EventName>, max_line_bytes: usize) -> Self {
        LineDecoder {
            format,
            event,
            max_line_bytes,
            line: 0,
            in_long_line: false,
            carry: Vec::new(),
        }
    }

    /// Lines completed so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// The event for one piece (a line, or a piece of a long one), or `None` for what is skipped
    /// (with a warning naming the line when it is malformed).
    pub fn decode(&mut self, piece: Piece) -> Option<Routed> {
        let number = self.line + 1;
        self.try_decode(piece).unwrap_or_else(|reason| {
            tracing::warn!("line {number}: skipped: {reason}");
            None
        })
    }

    /// As `decode`, but a malformed line is an error (HTTP publishing refuses the whole body).
    pub fn try_decode(&mut self, mut piece: Piece) -> Result<Option<Routed>, String> {
        let number = self.line + 1;
        // A piece without `\n` that is shorter than the limit is the last line, cut by EOF.
        let line_ends = piece.last() == Some(&b'\n') || piece.len() < self.max_line_bytes;
        if !line_ends && !self.in_long_line {
            self.in_long_line = true;
            let action = match self.format {
                Format::Text => "sending it in pieces of that size",
                Format::Json => "skipping it (JSON can't be split)",
            };
            tracing::warn!(
                "line {number}: longer than --max-line-bytes ({} bytes); {action}",
                self.max_line_bytes
            );
        }
        let was_long = self.in_long_line;
        if line_ends {
            self.line += 1;
            self.in_long_line = false;
            if piece.last() == Some(&b'\n') {
                piece.pop();
            }
            if piece.last() == Some(&b'\r') {
                piece.pop();
            }
        }
        match self.format {
            Format::Text => Ok(self.text(piece, number, line_ends).map(|event| Routed {
                channel: None,
                event,
            })),
            Format::Json if was_long => Ok(None),
            Format::Json => self.json(&piece),
        }
    }

    fn text(&mut self, piece: Piece, number: u64, line_ends: bool) -> Option<Event> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(&piece);
        if !line_ends {
            // Keep a character split by the piece boundary whole for the next piece.
            if let Err(err) = std::str::from_utf8(&bytes)
                && err.error_len().is_none()
            {
                self.carry = bytes.split_off(err.valid_up_to());
            }
        }
        if bytes.is_empty() {
            return None; // a browser drops an event whose data is empty
        }
        let data = match String::from_utf8(bytes) {
            Ok(data) => data,
            Err(err) => {
                // POST bodies come here too: one warning per period, however many lines.
                static WARNING: SharedThrottle = SharedThrottle::new(WARNING_PERIOD);
                if let Some(lines) = WARNING.note() {
                    tracing::warn!(lines, "line {number}: invalid UTF-8 replaced with U+FFFD");
                }
                String::from_utf8_lossy(err.as_bytes()).into_owned()
            }
        };
        let event = Event::new(data);
        Some(match &self.event {
            Some(name) => event.with_event(name.clone()),
            None => event,
        })
    }

    fn json(&self, line: &[u8]) -> Result<Option<Routed>, String> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        self.parse_json(line).map(Some)
    }

    fn parse_json(&self, line: &[u8]) -> Result<Routed, String> {
        let parsed: JsonLine = serde_json::from_slice(line).map_err(|err| err.to_string())?;
        let data = match parsed.data {
            serde_json::Value::String(text) => text,
            other => other.to_string(), // compact JSON
        };
        if data.is_empty() {
            return Err("empty \"data\" (a browser would drop the event)".into());
        }
        let mut event = Event::new(data);
        let name = match parsed.event {
            Some(name) => Some(name.parse::<EventName>().map_err(|e| e.to_string())?),
            None => self.event.clone(),
        };
        if let Some(name) = name {
            event = event.with_event(name);
        }
        if let Some(id) = parsed.id {
            event = event.with_id(id.into_string()).map_err(|e| e.to_string())?;
        }
        if let Some(ms) = parsed.retry {
            event = event.with_retry(Duration::from_millis(ms));
        }
        let channel = parsed.channel.map(|name| name.parse()).transpose()?;
        Ok(Routed { channel, event })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(format: Format, max: usize, pieces: &[&[u8]]) -> Vec<String> {
        let mut decoder = LineDecoder::new(format, None, max);
        pieces
            .iter()
            .filter_map(|piece| decoder.decode(piece.to_vec()))
            .map(|routed| String::from_utf8(routed.event.encode(0).to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn text_lines_lose_their_line_end_and_empty_ones_are_skipped() {
        let events = decode_all(
            Format::Text,
            1024,
            &[b"a\n", b"b\r\n", b"\n", b"\r\n", b" c \n", b"last"],
        );
        assert_eq!(
            events,
            [
                "id: 0\ndata: a\n\n",
                "id: 0\ndata: b\n\n",
                "id: 0\ndata:  c \n\n",
                "id: 0\ndata: last\n\n"
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let events = decode_all(Format::Text, 1024, &[b"ok \xff\xfe end\n"]);
        assert_eq!(events, ["id: 0\ndata: ok \u{fffd}\u{fffd} end\n\n"]);
    }

    #[test]
    fn long_lines_split_on_character_boundaries() {
        // "é" is two bytes: a 3-byte piece ends inside the second one.
        let events = decode_all(Format::Text, 3, &[b"a\xc3\xa9", b"\xc3\xa9b", b"\n"]);
        assert_eq!(events, ["id: 0\ndata: aé\n\n", "id: 0\ndata: éb\n\n"]);
    }

    #[test]
    fn json_lines_carry_fields_and_bad_ones_are_skipped() {
        let events = decode_all(
            Format::Json,
            1024,
            &[
                br#"{"data":"hi","event":"greet","id":"x1","retry":1500}"#,
                b"\n",
                b"{not json}\n",
                br#"{"data":{"z":[1, 1.50, 12345678901234567890123],"a":null}}"#,
                b"\n",
                br#"{"data":"a","id":"bad\nid"}"#,
                b"\n",
                br#"{"dta":"typo"}"#,
                b"\n",
                br#"{"data":"n","id":42}"#,
                b"\n",
                br#"{"data":"n","id":[1]}"#,
                b"\n",
            ],
        );
        assert_eq!(
            events,
            [
                "event: greet\nid: x1\nretry: 1500\ndata: hi\n\n",
                "id: 0\ndata: {\"z\":[1,1.50,12345678901234567890123],\"a\":null}\n\n",
                "id: 42\ndata: n\n\n"
            ]
        );
    }

    #[test]
    fn json_lines_may_name_their_channel() {
        let mut decoder = LineDecoder::new(Format::Json, None, 1024);
        let routed = decoder
            .decode(br#"{"data":"x","channel":"build"}"#.to_vec())
            .unwrap();
        assert_eq!(routed.channel.unwrap().as_str(), "build");
        assert!(
            decoder
                .decode(br#"{"data":"x"}"#.to_vec())
                .unwrap()
                .channel
                .is_none()
        );
        let bad = decoder.try_decode(br#"{"data":"x","channel":"a/b"}"#.to_vec());
        assert!(bad.unwrap_err().contains("a/b"));
    }
}
