//! The registry of channels: the default one (`<events-path>`), and named ones created by their
//! first subscriber or publisher (DESIGN.md §19). `--max-channels` counts the channels that hold
//! events, or that a publisher asked for: their slots. A channel only readers asked for takes
//! no slot (its streams are bounded by the stream limits), so readers never squat publishers
//! out, and it is never ended to make room: a publish that needs a slot when none is free is
//! refused. A named channel nobody holds is forgotten when it sent nothing (at once) or nothing
//! for `IDLE`, so memory stays bounded whatever names clients try. Also the one heartbeat task
//! for all of them, and the `/stats` totals.

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

/// The registry is swept for channels nobody holds whenever it has grown to twice its size
/// after the last sweep, and at least to this: a crowd of readers on made-up names, each gone
/// again, costs one scan per doubling, not one per name.
const SWEEP_AT_LEAST: usize = 64;

/// Who asks for a channel: a reader's takes no slot, a publisher's needs one.
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
    pub publishes_refused: u64,
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
    named: Mutex<Named>,
    next_id: AtomicU64,
}

/// The named channels, and the size at which they are next swept (see `SWEEP_AT_LEAST`).
#[derive(Debug)]
struct Named {
    map: HashMap<ChannelName, Arc<Channel>>,
    sweep_at: usize,
}

impl Named {
    /// Forgets the channels nobody holds (no stream, no publisher mid-way: only the registry's
    /// reference is left) that are idle (see `Channel::is_reclaimable`).
    fn reclaim(&mut self, now: Instant) {
        self.map.retain(|name, channel| {
            let keep = Arc::strong_count(channel) > 1 || !channel.is_reclaimable(IDLE, now);
            if !keep {
                tracing::debug!(channel = name.as_str(), "idle channel reclaimed");
            }
            keep
        });
        self.sweep_at = (2 * self.map.len()).max(SWEEP_AT_LEAST);
    }

    /// The slots taken (see `Channel::holds_slot`).
    fn slots(&self) -> usize {
        self.map
            .values()
            .filter(|channel| channel.holds_slot())
            .count()
    }
}

impl Channels {
    pub fn new(control: Arc<Control>, config: ChannelConfig, max_channels: usize) -> Self {
        let default = Channel::new(DEFAULT_NAME.into(), 0, config.clone(), control.clone());
        Channels {
            default: Arc::new(default),
            control,
            config,
            max_channels,
            named: Mutex::new(Named {
                map: HashMap::new(),
                sweep_at: SWEEP_AT_LEAST,
            }),
            next_id: AtomicU64::new(1),
        }
    }

    /// The object connections share (orders, progress marks, `--max-clients`).
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Named> {
        self.named
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The channel of that name, created if it does not exist. A reader always gets it (the
    /// stream limits bound readers). A publisher's channel needs a slot: when `--max-channels`
    /// are taken, idle channels are reclaimed to free one; if none can be, the publish is
    /// refused (counted). No channel is ever ended to make room.
    pub fn get_or_create(&self, name: &ChannelName, role: Role) -> Result<Arc<Channel>, Refusal> {
        if name.is_default() {
            return Ok(self.default.clone());
        }
        if self.control.is_closing() {
            return Err(Refusal::Closed);
        }
        let mut named = self.lock();
        let existing = named.map.get(name).cloned();
        if role == Role::Publisher && !existing.as_ref().is_some_and(|c| c.holds_slot()) {
            if named.slots() >= self.max_channels {
                named.reclaim(Instant::now());
            }
            if named.slots() >= self.max_channels {
                drop(named);
                self.control.count_publish_refused();
                return Err(Refusal::TooManyChannels);
            }
        }
        let channel = match existing {
            Some(channel) => channel,
            None => {
                if named.map.len() >= named.sweep_at {
                    named.reclaim(Instant::now());
                }
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let channel = Arc::new(Channel::new(
                    name.shared(),
                    id,
                    self.config.clone(),
                    self.control.clone(),
                ));
                named.map.insert(name.clone(), channel.clone());
                tracing::debug!(channel = name.as_str(), "channel created");
                channel
            }
        };
        if role == Role::Publisher {
            // Under the registry's lock, so two publishers cannot both take the last slot.
            channel.publisher_asked();
        }
        Ok(channel)
    }

    /// The slots taken now (named channels that hold events or that a publisher asked for).
    pub fn slots(&self) -> usize {
        self.lock().slots()
    }

    /// The channel of that name if it is alive; none is created.
    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        if name == DEFAULT_NAME {
            return Some(self.default.clone());
        }
        let name = name.parse::<ChannelName>().ok()?;
        self.lock().map.get(&name).cloned()
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
            .chain(self.lock().map.values().cloned())
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
            self.lock().reclaim(now);
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
            publishes_refused: self.control.publishes_refused(),
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
    async fn publishers_need_slots_and_idle_channels_free_theirs() {
        let channels = channels(2);
        let a = channels.get_or_create(&name("a"), Role::Publisher).unwrap();
        a.publish(|_| Event::new("kept")).await.unwrap();
        drop(a);
        // "b" is read and a publisher asked for it: never reclaimed while its stream is open.
        let b = channels.get_or_create(&name("b"), Role::Publisher).unwrap();
        let reader = b.subscribe(None).unwrap();
        drop(b);
        assert_eq!(
            channels
                .get_or_create(&name("c"), Role::Publisher)
                .unwrap_err(),
            Refusal::TooManyChannels,
            "a sent an event moments ago: it keeps its slot"
        );
        assert_eq!(channels.control().publishes_refused(), 1);
        tokio::time::advance(IDLE).await;
        let c = channels.get_or_create(&name("c"), Role::Publisher).unwrap();
        let names: Vec<String> = channels.all().iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(names, ["default", "b", "c"]);
        assert_eq!(channels.slots(), 2);
        drop((reader, c));

        // A client that comes back to the reclaimed "a" with its last id is told what it missed.
        tokio::time::advance(IDLE).await;
        let a = channels.get_or_create(&name("a"), Role::Reader).unwrap();
        let back = a.subscribe(Some("1")).unwrap();
        assert!(back.notice.is_some(), "a silent gap");
    }

    #[tokio::test]
    async fn readers_take_no_slot_and_are_never_ended_for_a_publisher() {
        let channels = channels(1);
        let open = |text: &str, role| channels.get_or_create(&name(text), role);
        let mut waiting: Vec<_> = (0..100)
            .map(|n| open(&format!("user-{n}"), Role::Reader).unwrap())
            .map(|channel| channel.subscribe(None).unwrap())
            .collect();
        assert_eq!(channels.slots(), 0, "readers take no slot");
        let deploys = open("deploys", Role::Publisher).unwrap();
        deploys.publish(|_| Event::new("v1")).await.unwrap();
        // The one slot is taken: a publish to a new channel, or to one readers wait on, is
        // refused, and the waiting readers' streams stay open.
        assert_eq!(
            open("builds", Role::Publisher).unwrap_err(),
            Refusal::TooManyChannels
        );
        assert_eq!(
            open("user-7", Role::Publisher).unwrap_err(),
            Refusal::TooManyChannels
        );
        for subscription in &mut waiting {
            assert!(matches!(
                subscription.receiver.try_recv(),
                Err(crate::channel::TryRecvError::Empty)
            ));
        }
        assert_eq!(channels.control().publishes_refused(), 2);
        // An event that reaches a reader-only channel anyway (as through Redis) makes it hold one.
        let user = channels.get("user-3").unwrap();
        user.publish(|_| Event::new("hello")).await.unwrap();
        assert!(user.holds_slot());
        assert_eq!(
            waiting[3].receiver.recv().await.unwrap().stamp.unwrap().seq,
            1
        );
    }

    #[test]
    fn reader_only_channels_nobody_holds_are_swept_as_the_registry_doubles() {
        let channels = channels(1);
        for n in 0..10_000 {
            let channel = channels
                .get_or_create(&name(&format!("made-up-{n}")), Role::Reader)
                .unwrap();
            drop(channel.subscribe(None).unwrap());
        }
        assert!(
            channels.all().len() <= SWEEP_AT_LEAST + 1,
            "{}",
            channels.all().len()
        );
    }

    #[test]
    fn a_channel_a_publisher_asked_for_holds_its_slot_before_its_first_event() {
        let channels = channels(1);
        let reader = channels.get_or_create(&name("a"), Role::Reader).unwrap();
        let _stream = reader.subscribe(None).unwrap();
        assert!(!reader.holds_slot());
        channels.get_or_create(&name("a"), Role::Publisher).unwrap();
        assert!(channels.get_or_create(&name("b"), Role::Publisher).is_err());
        assert!(reader.holds_slot());
    }
}
