//! `GET /presence/NAME` (`--presence`): who reads channel NAME, over every instance, as JSON
//! `{"channel", "streams", "anonymous", "users": [{"user", "streams"}]}`. Access as the
//! channel's stream: a private channel needs a token that may read it; a `--public` channel
//! gives anyone its counts, and its users' names to a token that may read it. A channel
//! nobody reads is 200 with zero counts. The counting is `presence/`'s.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::refusal::unanswered;
use crate::access::{Access, Denied, Gate, access};
use crate::channels::ChannelName;
use crate::presence::Presence;

pub fn route(presence: Arc<Presence>, gate: Arc<Gate>) -> BoxedFilter<(Response,)> {
    warp::path!("presence" / ChannelName)
        .and(warp::get())
        .and(access(gate))
        .then(move |channel: ChannelName, access: Access| {
            let presence = presence.clone();
            async move {
                let names = match access.may_name_readers(&channel).await {
                    Ok(names) => names,
                    Err(Denied::Refused(refused)) => return refused.into_response(),
                    Err(Denied::Unanswered) => return unanswered(false),
                };
                let snapshot = presence.snapshot(channel.as_str(), names).await;
                warp::reply::json(&snapshot).into_response()
            }
        })
        .boxed()
}
