//! Events on standard output: the data, a JSON line `sse-broadcast -f json` reads, or SSE wire
//! text. Records gather in a buffer that the listener flushes once it has handled every event a
//! read from the socket completed (one `write` for a burst, where a write per event halved the
//! rate), or after each record when a cursor file must never run ahead of what the reader got.
//! No complete event waits for more bytes: a live reader sees each one when it arrives.

use std::io::{self, BufWriter, Stdout, Write};

use serde::Serialize;

use super::config::OutputMode;
use super::parse::Event;

/// The JSON shape of `-o json`, keys in the order `-f json`'s documentation lists them; only
/// keys it accepts, so every line is taken.
#[derive(Serialize)]
struct JsonEvent<'a> {
    /// Left out when there is no last event id yet (`-f json` would publish an empty one).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    data: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
}

#[derive(Debug)]
pub struct Output {
    out: BufWriter<Stdout>,
    mode: OutputMode,
    /// What ends a record: `\n`, or NUL with `-0`.
    end: u8,
}

impl Output {
    pub fn new(mode: OutputMode, null: bool) -> Self {
        Output {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            mode,
            end: if null { b'\0' } else { b'\n' },
        }
    }

    /// Writes one event into the buffer; `channel` is its own channel on a stream of several.
    pub fn write(&mut self, event: &Event, channel: Option<&str>) -> io::Result<()> {
        render(&mut self.out, self.mode, self.end, event, channel)
    }

    /// Sends what the buffer holds to stdout.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn render(
    out: &mut impl Write,
    mode: OutputMode,
    end: u8,
    event: &Event,
    channel: Option<&str>,
) -> io::Result<()> {
    match mode {
        OutputMode::Data => out.write_all(event.data.as_bytes())?,
        OutputMode::Json => {
            let line = JsonEvent {
                id: (!event.id.is_empty()).then_some(event.id.as_str()),
                event: event.event.as_deref(),
                data: &event.data,
                retry: event.retry,
                channel,
            };
            serde_json::to_writer(&mut *out, &line)?;
        }
        OutputMode::Raw => {
            if let Some(name) = &event.event {
                writeln!(out, "event: {name}")?;
            }
            if !event.id.is_empty() {
                writeln!(out, "id: {}", event.id)?;
            }
            if let Some(retry) = event.retry {
                writeln!(out, "retry: {retry}")?;
            }
            // The parser joined the data lines with LF and no line holds a CR.
            for line in event.data.split('\n') {
                writeln!(out, "data: {line}")?;
            }
        }
    }
    out.write_all(&[end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(mode: OutputMode, end: u8, event: &Event, channel: Option<&str>) -> String {
        let mut out = Vec::new();
        render(&mut out, mode, end, event, channel).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_mode_writes_its_record() {
        let named = Event {
            data: "a\n\"b\"\u{2028}".into(),
            event: Some("build".into()),
            id: "b:3,a:1".into(),
            retry: Some(500),
        };
        let plain = Event {
            data: String::new(),
            event: None,
            id: String::new(),
            retry: None,
        };
        assert_eq!(
            rendered(OutputMode::Data, b'\n', &named, None),
            "a\n\"b\"\u{2028}\n"
        );
        assert_eq!(rendered(OutputMode::Data, 0, &plain, None), "\0");
        assert_eq!(
            rendered(OutputMode::Json, b'\n', &named, Some("b")),
            "{\"id\":\"b:3,a:1\",\"event\":\"build\",\"data\":\"a\\n\\\"b\\\"\u{2028}\",\"retry\":500,\"channel\":\"b\"}\n"
        );
        assert_eq!(
            rendered(OutputMode::Json, b'\n', &plain, None),
            "{\"data\":\"\"}\n"
        );
        assert_eq!(
            rendered(OutputMode::Raw, b'\n', &named, None),
            "event: build\nid: b:3,a:1\nretry: 500\ndata: a\ndata: \"b\"\u{2028}\n\n"
        );
        assert_eq!(rendered(OutputMode::Raw, 0, &plain, None), "data: \n\0");
    }
}
