//! The page at `/`: the built-in viewer, or `--static-dir`.

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::ServeConfig;

/// The built-in viewer page, served at `/` unless `--static-dir` is given.
const INDEX_HTML: &str = include_str!("../../assets/index.html");

/// `--static-dir` (which keeps every path inside it and serves `index.html` for `/`), or the
/// built-in page at `/`.
pub fn route(config: &ServeConfig) -> BoxedFilter<(Response,)> {
    match &config.static_dir {
        // Paths before methods, here as in every route: a path nobody serves is a 404 whatever
        // the method (a POST to a bad channel name included), not a 405 from the page.
        Some(dir) => warp::fs::dir(dir.clone())
            .and(warp::get())
            .map(Reply::into_response)
            .boxed(),
        None => warp::path::end()
            .and(warp::get())
            .map(|| warp::reply::html(INDEX_HTML).into_response())
            .boxed(),
    }
}
