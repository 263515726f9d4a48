//! Presence over every instance (`--redis`): one task tells Redis each change of this
//! instance's share as it comes, in order, and every `LEASE / 4` renews its lease on every
//! channel it has readers on. A renewal also counts out the instances whose lease ended (they
//! died) and announces their users' leaves, so a dead instance's readers are gone from every
//! count within `LEASE`, and its leaves are announced at the next renewal after that. Each
//! renewal tells the whole share, so a change Redis could not be told, or what Redis lost, is
//! right again within `LEASE / 4`.
//!
//! A renewal is one call per channel, and changes are not held behind it: before each
//! channel's call, the changes queued meanwhile are told, and that channel's share is read
//! only then. So a whole share told is never older than a change told before it, and a
//! stream opening (which waits until Redis counts it: `Presence::enter`) waits for one call
//! at most, however many channels this instance renews.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::{Change, Presence};
use crate::bus::{LEASE, RedisBus};

pub async fn run(
    presence: Arc<Presence>,
    bus: Arc<RedisBus>,
    mut changes: UnboundedReceiver<Change>,
    closing: CancellationToken,
) {
    // Channels whose change Redis could not be told: told whole at the next renewal (empty
    // when this instance has left them meanwhile).
    let mut unsent: HashSet<Arc<str>> = HashSet::new();
    let mut renewals = tokio::time::interval(LEASE / 4);
    renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = closing.cancelled() => {
                // The streams ended: what they left is told now, not after the lease.
                while let Ok(change) = changes.try_recv() {
                    tell(&bus, change, &mut unsent).await;
                }
                return;
            }
            Some(change) = changes.recv() => tell(&bus, change, &mut unsent).await,
            _ = renewals.tick() => {
                // The whole share each time: Redis may have lost what it held (a restart
                // without persistence, a failover) and must learn it again; the script
                // announces only what changed.
                let mut channels = std::mem::take(&mut unsent);
                channels.extend(presence.channels());
                for channel in channels {
                    while let Ok(change) = changes.try_recv() {
                        tell(&bus, change, &mut unsent).await;
                    }
                    let share = presence.share(&channel);
                    if bus.presence(&channel, &share, true).await.is_none() {
                        unsent.insert(channel);
                    }
                }
            }
        }
    }
}

/// Tells Redis one change; then whoever waits for it (a stream opening) goes on.
async fn tell(bus: &RedisBus, change: Change, unsent: &mut HashSet<Arc<str>>) {
    let Change {
        channel,
        field,
        streams,
        told,
    } = change;
    if bus
        .presence(&channel, &[(field, streams)], false)
        .await
        .is_none()
    {
        unsent.insert(channel);
    }
    drop(told);
}
