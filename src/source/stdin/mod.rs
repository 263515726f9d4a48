//! Stdin lines as events. An OS thread reads (`reader.rs`: tokio's `stdin` read can't be
//! cancelled) and hands over batches of raw pieces; the async half here decodes them (text or
//! JSON, `crate::lines`, as POST bodies are) and publishes consecutive lines for one channel as
//! one run.
//!
//! Memory stays flat: the hand-over is bounded, so a channel that waits for a slow client stops the
//! reader, and no piece is longer than `--max-line-bytes`.

mod reader;

use std::io;
use std::sync::Arc;

use crate::bus::{Bus, RUN_BYTES, RUN_EVENTS};
use crate::channel::Channel;
use crate::channels::{Channels, Role};
use crate::event::{Event, EventName};
use crate::lines::{Format, LineDecoder, Routed};
use crate::throttle::{Throttle, WARNING_PERIOD};

#[derive(Debug, Clone)]
pub struct StdinSource {
    pub format: Format,
    pub event: Option<EventName>,
    pub max_line_bytes: usize,
    /// Copy every line to stdout as it is read.
    pub tee: bool,
    /// Said at warn when stdin ends before its first line: set when stdin was read only because
    /// it is not a terminal, as in the background, where /dev/null ends at once.
    pub if_empty: Option<&'static str>,
}

impl StdinSource {
    /// Publishes every line to `channel` (a JSON line's `"channel"` to that one) until stdin
    /// ends (returns `Ok`) or the channels close.
    pub async fn run(
        self,
        bus: Bus,
        channels: Arc<Channels>,
        channel: Arc<Channel>,
    ) -> io::Result<()> {
        let mut batches = reader::spawn_reader(self.max_line_bytes, self.tee)?;
        let mut decoder = LineDecoder::new(self.format, self.event, self.max_line_bytes);
        // Lines for channels that get no slot can come by the thousand: one warning a period
        // (each is counted in /metrics, `publishes_refused`).
        let mut refused = Throttle::new(WARNING_PERIOD);
        while let Some(batch) = batches.recv().await {
            let (pieces, error) = batch;
            // Consecutive lines for one channel go out as one run: with --redis, one round trip
            // for the run instead of one a line.
            let mut run = Run::default();
            for piece in pieces {
                let Some(Routed {
                    channel: name,
                    event,
                }) = decoder.decode(piece)
                else {
                    continue;
                };
                crate::panics::provoke("stdin", event.data());
                let target = match name {
                    None => channel.clone(),
                    Some(name) => match channels.get_or_create(&name, Role::Publisher) {
                        Ok(target) => target,
                        Err(refusal) => {
                            if let Some(lines) = refused.note() {
                                tracing::warn!(
                                    lines,
                                    "line {}: skipped: channel {name} refused: {refusal}",
                                    decoder.lines()
                                );
                            }
                            continue;
                        }
                    },
                };
                if !run.takes(&target, &event) && !run.publish(&bus).await {
                    return Ok(());
                }
                run.push(target, event);
            }
            if !run.publish(&bus).await {
                return Ok(());
            }
            if let Some(err) = error {
                // nohup gives a write-only stdin: reading it fails at once, as empty as /dev/null.
                warn_if_empty(self.if_empty, decoder.lines());
                return Err(err);
            }
        }
        tracing::info!(lines = decoder.lines(), "stdin ended");
        warn_if_empty(self.if_empty, decoder.lines());
        Ok(())
    }
}

/// Says `hint` at warn when stdin ended before its first line.
fn warn_if_empty(hint: Option<&str>, lines: u64) {
    if lines == 0
        && let Some(hint) = hint
    {
        tracing::warn!("{hint}");
    }
}

/// Consecutive events for one channel, published together (at most `RUN_EVENTS` events and `RUN_BYTES` of data, as the bus cuts a POST).
#[derive(Default)]
struct Run {
    target: Option<Arc<Channel>>,
    events: Vec<Event>,
    bytes: usize,
}

impl Run {
    /// Whether `event` for `target` may join this run.
    fn takes(&self, target: &Arc<Channel>, event: &Event) -> bool {
        match &self.target {
            None => true,
            Some(current) => {
                Arc::ptr_eq(current, target)
                    && self.events.len() < RUN_EVENTS
                    && self.bytes + event.data().len() <= RUN_BYTES
            }
        }
    }

    fn push(&mut self, target: Arc<Channel>, event: Event) {
        self.bytes += event.data().len();
        self.events.push(event);
        self.target = Some(target);
    }

    /// Publishes the run (waiting for Redis while it is down) and empties it; `false` once
    /// shutting down.
    async fn publish(&mut self, bus: &Bus) -> bool {
        let Some(target) = self.target.take() else {
            return true;
        };
        self.bytes = 0;
        let events = std::mem::take(&mut self.events);
        bus.publish_waiting(&target, events).await.is_some()
    }
}
