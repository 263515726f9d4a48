//! Presence over every instance (`--redis`): one task tells Redis each change of this
//! instance's share as it comes, in order, and every `LEASE / 4` renews its lease on every
//! channel it has readers on. A renewal also counts out the instances whose lease ended (they
//! died) and announces their users' leaves, so a dead instance's readers are gone from every
//! count within `LEASE`, and its leaves are announced at the next renewal after that. A change
//! Redis could not be told is told again at the next renewal, as the whole share.

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
    // Channels whose share Redis may not know: told whole at the next renewal.
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
                if unsent.contains(&channel) {
                    continue; // told whole at the next renewal, this change with it
                }
                if bus.presence(&channel, &[(field, streams)], false).await.is_none() {
                    unsent.insert(channel);
                }
            }
            _ = renewals.tick() => {
                let mut shares = presence.shares();
                for channel in &unsent {
                    shares.entry(channel.clone()).or_default();
                }
                for (channel, share) in shares {
                    let whole = unsent.contains(&channel);
                    let told = match whole {
                        true => bus.presence(&channel, &share, true).await,
                        false => bus.presence(&channel, &[], false).await,
                    };
                    if told.is_some() {
                        unsent.remove(&channel);
                    } else {
                        unsent.insert(channel);
                    }
                }
            }
        }
    }
}
