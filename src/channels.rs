//! The registry of channels: the default one (`<events-path>`), and named ones created by their
//! first subscriber or publisher, at most `--max-channels` at once. A named channel that nobody
//! reads, nobody holds and that sent nothing for `IDLE` is reclaimed when room is needed, so
//! memory stays bounded whatever names clients try. Also the one heartbeat task for all of them,
//! and the `/stats` totals.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::channel::{Channel, ChannelConfig, ChannelStats, DEFAULT_NAME};
use crate::control::{Control, Refusal};

/// A channel that sent nothing for this long, with nobody reading, may make room for another.
/// (One that never sent anything goes as soon as nobody reads it: it holds nothing to miss.)
pub const IDLE: Duration = Duration::from_secs(300);

/// A channel name as it appears in the path: 1–64 of `A-Z a-z 0-9 . _ -`, starting with a letter
/// or digit. "default" names the default channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName(Arc<str>);

impl FromStr for ChannelName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let starts_well = name.starts_with(|c: char| c.is_ascii_alphanumeric());
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if (1..=64).contains(&name.len()) && starts_well && name.chars().all(allowed) {
            Ok(ChannelName(name.into()))
        } else {
            Err(format!(
                "`{name}` is not a channel name: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
            ))
        }
    }
}

impl ChannelName {
    /// The channel at `<events-path>` itself.
    pub fn default_name() -> Self {
        ChannelName(DEFAULT_NAME.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        &*self.0 == DEFAULT_NAME
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Counters and gauges served at `/stats`: totals over all channels at the top (the oldest and
/// newest ids are the default channel's), then each channel.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub consumers: usize,
    pub events_sent: u64,
    pub clients_dropped_stalled: u64,
    pub requests_refused: u64,
    pub connections_refused: u64,
    pub history_size: usize,
    pub oldest_id: Option<String>,
    pub newest_id: Option<String>,
    pub uptime_secs: u64,
    pub version: &'static str,
    pub channels: BTreeMap<String, ChannelStats>,
}

#[derive(Debug)]
pub struct Channels {
    control: Arc<Control>,
    config: ChannelConfig,
    max_channels: usize,
    default: Arc<Channel>,
    named: Mutex<HashMap<ChannelName, Arc<Channel>>>,
    next_id: AtomicU64,
}

impl Channels {
    pub fn new(control: Arc<Control>, config: ChannelConfig, max_channels: usize) -> Self {
        let default = Channel::new(DEFAULT_NAME.into(), 0, config.clone(), control.clone());
        Channels {
            default: Arc::new(default),
            control,
            config,
            max_channels,
            named: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The object connections share (orders, progress marks, `--max-clients`).
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelName, Arc<Channel>>> {
        self.named
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The channel of that name, created if it does not exist. Past `--max-channels`, idle
    /// channels are reclaimed to make room; if none can be, the request is refused (counted).
    pub fn get_or_create(&self, name: &ChannelName) -> Result<Arc<Channel>, Refusal> {
        if name.is_default() {
            return Ok(self.default.clone());
        }
        if self.control.is_closing() {
            return Err(Refusal::Closed);
        }
        let mut named = self.lock();
        if let Some(channel) = named.get(name) {
            return Ok(channel.clone());
        }
        if named.len() >= self.max_channels {
            reclaim(&mut named, Instant::now());
        }
        if named.len() >= self.max_channels {
            drop(named);
            self.control.count_refusal();
            return Err(Refusal::TooManyChannels);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let channel = Arc::new(Channel::new(
            name.0.clone(),
            id,
            self.config.clone(),
            self.control.clone(),
        ));
        named.insert(name.clone(), channel.clone());
        drop(named);
        tracing::debug!(channel = name.as_str(), "channel created");
        Ok(channel)
    }

    /// The channel of that name if it is alive; none is created.
    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        if name == DEFAULT_NAME {
            return Some(self.default.clone());
        }
        let name = name.parse::<ChannelName>().ok()?;
        self.lock().get(&name).cloned()
    }

    /// Every channel, the default first, then by name.
    pub fn all(&self) -> Vec<Arc<Channel>> {
        let mut all = self.unsorted();
        all[1..].sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Every channel, the default first.
    fn unsorted(&self) -> Vec<Arc<Channel>> {
        std::iter::once(self.default.clone())
            .chain(self.lock().values().cloned())
            .collect()
    }

    /// One task for all channels: sends each its heartbeat when nothing was sent for `every`,
    /// and reclaims idle channels. One wake-up serves every channel due within an eighth of the
    /// period (a heartbeat is that much late at most), so a thousand channels sending at odd
    /// times do not mean a thousand wake-ups per period.
    pub async fn run_heartbeat(&self, every: Duration) {
        let slack = every / 8;
        loop {
            let now = Instant::now();
            let next = self
                .unsorted()
                .iter()
                .map(|channel| channel.heartbeat(every, now))
                .min()
                .unwrap_or(now + every);
            reclaim(&mut self.lock(), now);
            if self.control.is_closing() {
                return;
            }
            tokio::time::sleep_until(next.max(now + slack)).await;
        }
    }

    /// Ends every channel's streams (each delivers what it holds first) and tells connections
    /// to close.
    pub fn close(&self) {
        self.control.close();
        for channel in self.all() {
            channel.close();
        }
    }

    pub fn stats(&self) -> Stats {
        let channels: BTreeMap<String, ChannelStats> = self
            .all()
            .iter()
            .map(|channel| (channel.name().to_owned(), channel.stats()))
            .collect();
        let default = &channels[DEFAULT_NAME];
        Stats {
            consumers: channels.values().map(|c| c.consumers).sum(),
            events_sent: channels.values().map(|c| c.events_sent).sum(),
            clients_dropped_stalled: self.control.clients_dropped_stalled(),
            requests_refused: self.control.requests_refused(),
            connections_refused: self.control.connections_refused(),
            history_size: channels.values().map(|c| c.history_size).sum(),
            oldest_id: default.oldest_id.clone(),
            newest_id: default.newest_id.clone(),
            uptime_secs: self.control.uptime().as_secs(),
            version: env!("CARGO_PKG_VERSION"),
            channels,
        }
    }
}

/// Drops the channels nobody holds (no stream, no publisher mid-way: only the registry's
/// reference is left) that are idle.
fn reclaim(named: &mut HashMap<ChannelName, Arc<Channel>>, now: Instant) {
    named.retain(|name, channel| {
        let keep = Arc::strong_count(channel) > 1 || !channel.is_reclaimable(IDLE, now);
        if !keep {
            tracing::debug!(channel = name.as_str(), "idle channel reclaimed");
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn channels(max: usize) -> Channels {
        let config = ChannelConfig {
            history: 10,
            history_bytes: 16 << 20,
            client_buffer: 16,
            stall_timeout: Duration::from_secs(1),
        };
        Channels::new(Arc::new(Control::new(None)), config, max)
    }

    fn name(text: &str) -> ChannelName {
        text.parse().unwrap()
    }

    #[test]
    fn names_follow_the_contract() {
        for good in ["a", "build", "Job-7.log_2", "0", &"x".repeat(64)] {
            assert!(good.parse::<ChannelName>().is_ok(), "{good:?} refused");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "_x",
            "a b",
            "a/b",
            "é",
            "a%20",
            &"x".repeat(65),
        ] {
            assert!(bad.parse::<ChannelName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn default_is_one_channel_under_both_names() {
        let channels = channels(1);
        let default = channels.get_or_create(&name("default")).unwrap();
        assert!(Arc::ptr_eq(&default, &channels.all()[0]));
        assert_eq!(channels.all().len(), 1, "no named channel was made");
    }

    #[tokio::test(start_paused = true)]
    async fn full_registry_reclaims_idle_channels_or_refuses() {
        let channels = channels(2);
        let a = channels.get_or_create(&name("a")).unwrap();
        a.publish(|_| Event::new("kept")).await.unwrap();
        drop(a);
        // "b" is read: never reclaimed while its stream is open.
        let b = channels.get_or_create(&name("b")).unwrap();
        let reader = b.subscribe(None).unwrap();
        drop(b);
        assert_eq!(
            channels.get_or_create(&name("c")).unwrap_err(),
            Refusal::TooManyChannels,
            "a sent an event moments ago: it stays"
        );
        assert_eq!(channels.control().requests_refused(), 1);
        tokio::time::advance(IDLE).await;
        let c = channels.get_or_create(&name("c")).unwrap();
        assert_eq!(channels.all().len(), 3);
        let names: Vec<String> = channels.all().iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(names, ["default", "b", "c"]);
        drop((reader, c));

        // A client that comes back to the reclaimed "a" with its last id is told what it missed.
        tokio::time::advance(IDLE).await;
        let a = channels.get_or_create(&name("a")).unwrap();
        let back = a.subscribe(Some("1")).unwrap();
        assert!(back.notice.is_some(), "a silent gap");
    }

    #[test]
    fn a_channel_that_never_sent_goes_once_unread() {
        let channels = channels(1);
        let a = channels.get_or_create(&name("a")).unwrap();
        let reader = a.subscribe(None).unwrap();
        drop(a);
        assert!(channels.get_or_create(&name("b")).is_err());
        drop(reader);
        assert!(channels.get_or_create(&name("b")).is_ok());
    }
}
