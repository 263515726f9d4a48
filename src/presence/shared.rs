//! Presence over every instance (`--redis`): one task tells Redis each change of this
//! instance's share as it comes, in order, and every `LEASE / 4` renews its lease on every
//! channel it has readers on. A renewal also counts out the instances whose lease ended (they
//! died) and announces their users' leaves, so a dead instance's readers are gone from every
//! count within `LEASE`, and its leaves are announced at the next renewal after that. Each
//! renewal tells the whole share, so a change Redis could not be told, or what Redis lost, is
//! right again within `LEASE / 4`.

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
    // Channels this instance left while Redis could not be told: told (empty) at the next
    // renewal.
    let mut unsent: HashSet<Arc<str>> = HashSet::new();
    let mut renewals = tokio::time::interval(LEASE / 4);
    renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = closing.cancelled() => {
                // The streams ended: what they left is told now, not after the lease.
                while let Ok((channel, field, streams)) = changes.try_recv() {
                    bus.presence(&channel, &[(field, streams)], false).await;
                }
                return;
            }
            Some((channel, field, streams)) = changes.recv() => {
                if bus.presence(&channel, &[(field, streams)], false).await.is_none() {
                    unsent.insert(channel);
                }
            }
            _ = renewals.tick() => {
                // The whole share each time: Redis may have lost what it held (a restart
                // without persistence, a failover) and must learn it again; the script
                // announces only what changed. The changes already queued go first, so the
                // share read after them is no older than any change told after it.
                while let Ok((channel, field, streams)) = changes.try_recv() {
                    if bus.presence(&channel, &[(field, streams)], false).await.is_none() {
                        unsent.insert(channel);
                    }
                }
                let mut shares = presence.shares();
                for channel in unsent.drain() {
                    shares.entry(channel).or_default();
                }
                for (channel, share) in shares {
                    if bus.presence(&channel, &share, true).await.is_none() {
                        unsent.insert(channel);
                    }
                }
            }
        }
    }
}
