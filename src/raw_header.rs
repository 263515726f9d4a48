//! A request header as sent, for the filters of any layer: warp's own refuses bytes that are
//! not UTF-8, and some headers (`Last-Event-ID`) may carry them.

use std::convert::Infallible;

use warp::Filter;
use warp::http::HeaderValue;

/// A header as sent (its bytes need not be UTF-8), if present. warp's `header::optional`
/// refuses a value that is not UTF-8 with a 400, which an EventSource takes as final: a
/// browser echoes the id it last saw in `Last-Event-ID` as UTF-8 of any kind.
pub fn optional_header(
    name: &'static str,
) -> impl Filter<Extract = (Option<HeaderValue>,), Error = Infallible> + Clone {
    warp::header::value(name)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}
