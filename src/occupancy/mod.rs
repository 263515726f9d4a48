//! `--on-occupied` / `--on-vacated`: a command when a channel gets its first reader, or loses
//! its last. Channels report each change of their local reader count from 0 to 1 and back
//! (`control::Watch`); one task here decides what runs. For one channel at most one hook runs
//! at a time: changes made meanwhile are folded, and when it ends, if the channel's state
//! differs from the one it was run for, the other hook runs. So readers coming and going fast
//! cost at most one hook run per state, not one per reader.
//!
//! Alone, the state is this instance's. With `--redis`, it is counted over every instance
//! (`bus::RedisBus::occupancy`): the instance whose change made the difference runs the hook
//! and holds the channel's hook lease meanwhile, so one instance runs it, once; every
//! `LEASE / 4` each instance renews its leases and looks at the channels others occupied, so
//! one that died is counted out, and its channels found vacant, within `LEASE`.

mod hook;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{Decision, LEASE, RedisBus};
use crate::control::Change;

/// `--on-occupied` and `--on-vacated`.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub occupied: Option<String>,
    pub vacated: Option<String>,
}

impl Hooks {
    pub fn any(&self) -> bool {
        self.occupied.is_some() || self.vacated.is_some()
    }

    fn command(&self, occupied: bool) -> Option<&str> {
        if occupied {
            self.occupied.as_deref()
        } else {
            self.vacated.as_deref()
        }
    }
}

/// What this instance knows of one channel.
#[derive(Debug, Default)]
struct Entry {
    /// It has readers here.
    here: bool,
    /// The state the hook running here now was run for.
    running: Option<bool>,
    /// Alone: the state the last hook was run for (every channel starts vacant).
    ran: bool,
    /// With Redis: the last call failed; the next renewal tells Redis again.
    unsent: bool,
}

impl Entry {
    /// Nothing to remember: vacant here, no hook running, nothing owed.
    fn is_settled(&self) -> bool {
        !self.here && self.running.is_none() && !self.ran && !self.unsent
    }
}

pub struct Occupancy {
    hooks: Arc<Hooks>,
    redis: Option<Arc<RedisBus>>,
    channels: HashMap<Arc<str>, Entry>,
    /// Hooks that ended, by channel.
    ended: UnboundedSender<Arc<str>>,
    closing: CancellationToken,
    running: TaskTracker,
}

impl Occupancy {
    /// Takes `changes` until `closing`; then every running hook gets SIGTERM, and this returns
    /// once they ended.
    pub async fn run(
        hooks: Hooks,
        redis: Option<Arc<RedisBus>>,
        mut changes: UnboundedReceiver<Change>,
        closing: CancellationToken,
    ) {
        let (ended, mut hooks_ended) = unbounded_channel();
        let mut this = Occupancy {
            hooks: Arc::new(hooks),
            redis,
            channels: HashMap::new(),
            ended,
            closing: closing.clone(),
            running: TaskTracker::new(),
        };
        let mut renewals = tokio::time::interval(LEASE / 4);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = closing.cancelled() => break,
                Some(change) = changes.recv() => {
                    this.entry(&change.channel).here = change.occupied;
                    this.decide(&change.channel).await;
                }
                Some(channel) = hooks_ended.recv() => {
                    this.entry(&channel).running = None;
                    this.decide(&channel).await;
                }
                _ = renewals.tick(), if this.redis.is_some() => this.renew().await,
            }
        }
        this.running.close();
        this.running.wait().await;
    }

    fn entry(&mut self, channel: &Arc<str>) -> &mut Entry {
        self.channels.entry(channel.clone()).or_default()
    }

    /// Runs the hook `channel` needs now, if any and if none runs for it here.
    async fn decide(&mut self, channel: &Arc<str>) {
        let redis = self.redis.clone();
        let entry = self.entry(channel);
        let (here, running) = (entry.here, entry.running.is_some());
        match redis {
            None => {
                if !running && here != entry.ran {
                    entry.ran = here;
                    self.start(channel, here);
                }
            }
            Some(redis) => {
                let decision = redis.occupancy(channel, Some(here), running).await;
                self.decided(channel, decision);
            }
        }
        if self.channels.get(channel).is_some_and(Entry::is_settled) {
            self.channels.remove(channel);
        }
    }

    /// What Redis decided for `channel` (`None`: it could not be asked).
    fn decided(&mut self, channel: &Arc<str>, decision: Option<Decision>) {
        let entry = self.entry(channel);
        entry.unsent = decision.is_none();
        if let Some(Decision::Run { occupied }) = decision {
            self.start(channel, occupied);
        }
    }

    /// Every `LEASE / 4` with Redis: renews this instance's leases (and tells what a failed
    /// call did not), then looks at the channels other instances occupied: one that died
    /// left them, and its lease has ended or will.
    async fn renew(&mut self) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let mine: Vec<(Arc<str>, bool, bool)> = self
            .channels
            .iter()
            .map(|(name, entry)| (name.clone(), entry.here, entry.running.is_some()))
            .collect();
        for (channel, here, running) in &mine {
            let decision = redis.occupancy(channel, Some(*here), *running).await;
            self.decided(channel, decision);
            if self.channels.get(channel).is_some_and(Entry::is_settled) {
                self.channels.remove(channel);
            }
        }
        for name in redis.occupied_channels().await {
            if self.channels.contains_key(name.as_str()) {
                continue;
            }
            let channel: Arc<str> = name.into();
            match redis.occupancy(&channel, None, false).await {
                Some(Decision::Run { occupied }) => self.start(&channel, occupied),
                Some(Decision::Idle { occupied: false }) => redis.forget_occupied(&channel).await,
                _ => {}
            }
        }
    }

    /// Runs the hook for `occupied` on `channel` (none when that flag is not given: the state
    /// is still taken as told, so the other hook runs at the next change).
    fn start(&mut self, channel: &Arc<str>, occupied: bool) {
        tracing::info!(
            channel = &**channel,
            occupied,
            "channel {}",
            if occupied { "occupied" } else { "vacated" }
        );
        self.entry(channel).running = Some(occupied);
        let hooks = self.hooks.clone();
        let ended = self.ended.clone();
        let closing = self.closing.clone();
        let channel = channel.clone();
        self.running.spawn(async move {
            if let Some(command) = hooks.command(occupied) {
                hook::run(command, &channel, occupied, &closing).await;
            }
            // Err: shutting down; nothing more runs.
            let _ = ended.send(channel);
        });
    }
}
