//! The page at `/`: the built-in viewer, or `--static-dir`.

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::static_dir;
use crate::serve_config::ServeConfig;

/// The built-in viewer page, served at `/` unless `--static-dir` is given.
const INDEX_HTML: &str = include_str!("../../assets/index.html");

/// `--static-dir` (which keeps every path inside it and serves `index.html` for `/`:
/// `static_dir.rs`), or the built-in page at `/`.
pub fn route(config: &ServeConfig) -> BoxedFilter<(Response,)> {
    match &config.static_dir {
        Some(dir) => static_dir::route(dir, config.static_access),
        None => warp::path::end()
            .and(warp::get())
            .map(|| warp::reply::html(INDEX_HTML).into_response())
            .boxed(),
    }
}
