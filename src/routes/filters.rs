//! Small filters several routes share: the channel a path names, the channels registry handed
//! to a handler. (A header as sent is `crate::raw_header`'s.)

use std::convert::Infallible;
use std::sync::Arc;

use warp::path::FullPath;
use warp::{Filter, Rejection};

use crate::channels::{ChannelName, Channels};
use crate::cursor::MAX_CHANNELS;

pub fn with_channels(
    channels: Arc<Channels>,
) -> impl Filter<Extract = (Arc<Channels>,), Error = Infallible> + Clone {
    warp::any().map(move || channels.clone())
}

/// `<events-path>` (the default channel) or `<events-path>/<name>`, the name matched as sent
/// (no percent-decoding); anything else is not found. (`warp::path()` can't take a `/`, and
/// `--events-path` may hold several.)
pub fn channel_path(
    events_path: String,
) -> impl Filter<Extract = (ChannelName,), Error = Rejection> + Clone {
    warp::path::full().and_then(move |full: FullPath| {
        let name = match full.as_str().strip_prefix(events_path.as_str()) {
            Some("") => Some(ChannelName::default_name()),
            Some(rest) => rest.strip_prefix('/').and_then(|name| name.parse().ok()),
            None => None,
        };
        async move { name.ok_or_else(warp::reject::not_found) }
    })
}

/// The channels a stream path names: those of `channel_path`, or `<events-path>/a,b,c`, 2 to
/// 16 distinct names for a stream of several. Anything else is not found.
pub fn stream_channels(
    events_path: String,
) -> impl Filter<Extract = (Vec<ChannelName>,), Error = Rejection> + Clone {
    warp::path::full().and_then(move |full: FullPath| {
        let names = match full.as_str().strip_prefix(events_path.as_str()) {
            Some("") => Some(vec![ChannelName::default_name()]),
            Some(rest) => rest.strip_prefix('/').and_then(name_list),
            None => None,
        };
        async move { names.ok_or_else(warp::reject::not_found) }
    })
}

/// `a,b,c` as names: 1 to 16, each valid, none twice. A longer list is refused before any
/// name is read: the path is the client's, sent before any token is checked, and its work
/// must not grow faster than its length (the distinct check is quadratic in the count).
fn name_list(list: &str) -> Option<Vec<ChannelName>> {
    if list.split(',').nth(MAX_CHANNELS).is_some() {
        return None;
    }
    let names = list
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<ChannelName>, _>>()
        .ok()?;
    let distinct = names
        .iter()
        .enumerate()
        .all(|(index, name)| !names[..index].contains(name));
    distinct.then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_list_holds_1_to_16_distinct_names() {
        let list = |count: usize| {
            (0..count)
                .map(|n| format!("c{n}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(name_list("a").map(|names| names.len()), Some(1));
        assert_eq!(name_list(&list(16)).map(|names| names.len()), Some(16));
        for refused in [
            list(17),
            list(15_000),
            "a,b,a".into(),
            "a,,b".into(),
            "a,".into(),
        ] {
            assert_eq!(name_list(&refused), None, "{refused:.40}");
        }
    }
}
