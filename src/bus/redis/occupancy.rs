//! Occupancy over every instance (`--on-occupied`, `--on-vacated` with `--redis`): each
//! instance with readers on a channel holds a lease in the channel's set of occupants
//! (`PREFIX:{NAME}:occupants`), renewed while it has them; `occupancy.lua` counts the live
//! leases and gives a change to exactly one instance, which then holds the channel's hook
//! (`PREFIX:{NAME}:hook`) under a lease of its own while the command runs. An instance that dies
//! stops counting, and stops holding the hook, when its lease ends: `LEASE` after its last
//! renewal. The channels any instance occupied are listed in `PREFIX:occupied`, so a
//! survivor finds the ones a dead instance left behind.

use std::time::Duration;

use super::RedisBus;

/// How long an instance's readers count, and its hook holds the channel, after its last
/// renewal. Renewed every quarter of it, so a renewal may fail three times before it lapses.
pub const LEASE: Duration = Duration::from_secs(15);

/// What the script decided for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// This instance holds the channel's hook now: run the one for `occupied`.
    Run { occupied: bool },
    /// Another instance runs a hook; it looks again when that ends.
    Busy,
    /// Nothing to run; `occupied` over every live instance.
    Idle { occupied: bool },
}

impl RedisBus {
    fn occupancy_keys(&self, channel: &str) -> (String, String) {
        let tag = format!("{}:{{{channel}}}", self.prefix);
        (format!("{tag}:occupants"), format!("{tag}:hook"))
    }

    fn occupied_key(&self) -> String {
        format!("{}:occupied", self.prefix)
    }

    /// Tells Redis whether this instance has readers on `channel` (`None`: only looks), and
    /// whether it runs the channel's hook now; returns who runs what. `None` when Redis could
    /// not be asked (the caller asks again at its next renewal).
    pub async fn occupancy(
        &self,
        channel: &str,
        here: Option<bool>,
        running: bool,
    ) -> Option<Decision> {
        let (occupants, hook) = self.occupancy_keys(channel);
        if here == Some(true) {
            // Apart from the script: in a cluster this key lives in another slot than the channel's.
            let listed: redis::RedisResult<i64> = redis::cmd("SADD")
                .arg(self.occupied_key())
                .arg(channel)
                .query_async(&mut self.commands())
                .await;
            if let Err(err) = listed {
                self.failed(&format!("listing channel {channel} as occupied"), &err);
                return None;
            }
        }
        let here = match here {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        let reply: redis::RedisResult<(String, String)> = self
            .occupancy_script
            .key(&occupants)
            .key(&hook)
            .arg(&self.instance)
            .arg(here)
            .arg(LEASE.as_millis() as u64)
            .arg(if running { "1" } else { "0" })
            .invoke_async(&mut self.commands())
            .await;
        let (occupied, action) = match reply {
            Ok(reply) => {
                self.succeeded();
                reply
            }
            Err(err) => {
                self.failed(&format!("counting the readers of channel {channel}"), &err);
                return None;
            }
        };
        let occupied = occupied == "1";
        Some(match action.as_str() {
            "run" => Decision::Run { occupied },
            "busy" => Decision::Busy,
            _ => Decision::Idle { occupied },
        })
    }

    /// The channels some instance had readers on, and may have left (it died).
    pub async fn occupied_channels(&self) -> Vec<String> {
        let reply: redis::RedisResult<Vec<String>> = redis::cmd("SMEMBERS")
            .arg(self.occupied_key())
            .query_async(&mut self.commands())
            .await;
        reply.unwrap_or_else(|err| {
            self.failed("reading the occupied channels", &err);
            Vec::new()
        })
    }

    /// `channel` is vacant everywhere and nothing runs for it: no survivor need look at it.
    /// (An instance that has readers there meanwhile lists it again at its next renewal.)
    pub async fn forget_occupied(&self, channel: &str) {
        let reply: redis::RedisResult<i64> = redis::cmd("SREM")
            .arg(self.occupied_key())
            .arg(channel)
            .query_async(&mut self.commands())
            .await;
        if let Err(err) = reply {
            self.failed(&format!("forgetting channel {channel}"), &err);
        }
    }
}
