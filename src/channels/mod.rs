//! The registry of channels: the default one (`<events-path>`), and named ones created by their
//! first subscriber or publisher, at most `--max-channels` at once. A named channel that nobody
//! reads, nobody holds and that sent nothing for `IDLE` is reclaimed when room is needed, so
//! memory stays bounded whatever names clients try. Readers cannot squat publishers out: a
//! channel only readers asked for that received nothing gives its place to a publisher that
//! needs one. Also the one heartbeat task for all of them, and the `/stats` totals.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::channel::{Channel, ChannelConfig, ChannelStats, DEFAULT_NAME};
use crate::control::{Control, Refusal};

mod name;

pub use name::ChannelName;

/// A channel that sent nothing for this long, with nobody reading, may make room for another.
/// (One that never sent anything goes as soon as nobody reads it: it holds nothing to miss.)
pub const IDLE: Duration = Duration::from_secs(300);

/// Who asks for a channel. Anyone may read, so a reader's channel is the weaker claim: while it
/// has received nothing, it yields to a publisher's (see `make_room_for_publisher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reader,
    /// Stdin, a POST, the ticker. (A delivery through Redis creates no channel: it goes to
    /// channels that exist here, and the event makes them keep their place.)
    Publisher,
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
    /// channels are reclaimed to make room, and for a publisher a channel only readers asked
    /// for that received nothing; if none can be, the request is refused (counted).
    pub fn get_or_create(&self, name: &ChannelName, role: Role) -> Result<Arc<Channel>, Refusal> {
        if name.is_default() {
            return Ok(self.default.clone());
        }
        if self.control.is_closing() {
            return Err(Refusal::Closed);
        }
        let mut named = self.lock();
        if let Some(channel) = named.get(name) {
            if role == Role::Publisher {
                channel.publisher_asked();
            }
            return Ok(channel.clone());
        }
        if named.len() >= self.max_channels {
            reclaim(&mut named, Instant::now());
        }
        if named.len() >= self.max_channels && role == Role::Publisher {
            make_room_for_publisher(&mut named);
        }
        if named.len() >= self.max_channels {
            drop(named);
            self.control.count_refusal();
            return Err(Refusal::TooManyChannels);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let channel = Arc::new(Channel::new(
            name.shared(),
            id,
            self.config.clone(),
            self.control.clone(),
        ));
        if role == Role::Publisher {
            channel.publisher_asked();
        }
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

/// Ends and forgets the oldest channel that yields to a publisher (only readers asked for it,
/// it received nothing), if any. The oldest, because it has waited longest for an event that
/// never came: the likeliest made-up name. The newest is likelier a page opened just before
/// its job starts publishing, the order a deploy runs in; it keeps its place.
fn make_room_for_publisher(named: &mut HashMap<ChannelName, Arc<Channel>>) {
    while let Some((name, channel)) = named
        .iter()
        .filter(|(_, channel)| channel.yields_to_publisher())
        .min_by_key(|(_, channel)| channel.id())
        .map(|(name, channel)| (name.clone(), channel.clone()))
    {
        // It may have received an event since it was picked; then it stays, and is no longer
        // a candidate.
        if channel.make_room() {
            named.remove(&name);
            tracing::info!(
                channel = name.as_str(),
                "channel made room for a publisher: only readers asked for it, it received nothing"
            );
            return;
        }
    }
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
    fn default_is_one_channel_under_both_names() {
        let channels = channels(1);
        let default = channels
            .get_or_create(&name("default"), Role::Reader)
            .unwrap();
        assert!(Arc::ptr_eq(&default, &channels.all()[0]));
        assert_eq!(channels.all().len(), 1, "no named channel was made");
    }

    #[tokio::test(start_paused = true)]
    async fn full_registry_reclaims_idle_channels_or_refuses() {
        let channels = channels(2);
        let a = channels.get_or_create(&name("a"), Role::Publisher).unwrap();
        a.publish(|_| Event::new("kept")).await.unwrap();
        drop(a);
        // "b" is read: never reclaimed while its stream is open.
        let b = channels.get_or_create(&name("b"), Role::Reader).unwrap();
        let reader = b.subscribe(None).unwrap();
        drop(b);
        assert_eq!(
            channels
                .get_or_create(&name("c"), Role::Reader)
                .unwrap_err(),
            Refusal::TooManyChannels,
            "a sent an event moments ago: it stays"
        );
        assert_eq!(channels.control().requests_refused(), 1);
        tokio::time::advance(IDLE).await;
        let c = channels.get_or_create(&name("c"), Role::Reader).unwrap();
        assert_eq!(channels.all().len(), 3);
        let names: Vec<String> = channels.all().iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(names, ["default", "b", "c"]);
        drop((reader, c));

        // A client that comes back to the reclaimed "a" with its last id is told what it missed.
        tokio::time::advance(IDLE).await;
        let a = channels.get_or_create(&name("a"), Role::Reader).unwrap();
        let back = a.subscribe(Some("1")).unwrap();
        assert!(back.notice.is_some(), "a silent gap");
    }

    #[test]
    fn a_channel_that_never_sent_goes_once_unread() {
        let channels = channels(1);
        let a = channels.get_or_create(&name("a"), Role::Reader).unwrap();
        let reader = a.subscribe(None).unwrap();
        drop(a);
        assert!(channels.get_or_create(&name("b"), Role::Reader).is_err());
        drop(reader);
        assert!(channels.get_or_create(&name("b"), Role::Reader).is_ok());
    }

    #[tokio::test]
    async fn a_publisher_takes_the_place_of_the_oldest_channel_only_readers_asked_for() {
        let channels = channels(2);
        let open = |text: &str, role| channels.get_or_create(&name(text), role).unwrap();
        let mut old = open("old", Role::Reader).subscribe(None).unwrap();
        let new = open("new", Role::Reader).subscribe(None).unwrap();
        assert_eq!(
            channels
                .get_or_create(&name("x"), Role::Reader)
                .unwrap_err(),
            Refusal::TooManyChannels,
            "readers still meet --max-channels"
        );
        let deploys = open("deploys", Role::Publisher);
        assert!(old.receiver.recv().await.is_err() && old.receiver.made_room());
        let names: Vec<String> = channels.all().iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(names, ["default", "deploys", "new"]);
        assert!(channels.stats().channels["new"].yields_to_publisher);
        assert!(!channels.stats().channels["deploys"].yields_to_publisher);
        // "new" gets an event without a publisher asking here (as through Redis): it stays.
        channels
            .get("new")
            .unwrap()
            .publish(|_| Event::new("x"))
            .await
            .unwrap();
        assert_eq!(
            channels
                .get_or_create(&name("builds"), Role::Publisher)
                .unwrap_err(),
            Refusal::TooManyChannels
        );
        drop((new, deploys));
    }

    #[test]
    fn a_channel_a_publisher_asked_for_keeps_its_place_before_its_first_event() {
        let channels = channels(1);
        let reader = channels.get_or_create(&name("a"), Role::Reader).unwrap();
        let _stream = reader.subscribe(None).unwrap();
        channels.get_or_create(&name("a"), Role::Publisher).unwrap();
        assert!(channels.get_or_create(&name("b"), Role::Publisher).is_err());
        assert!(!reader.yields_to_publisher());
    }
}
