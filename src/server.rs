//! The warp filter chain: the event streams (the default channel and named ones), publishing
//! (`publish.rs`), `/stats`, `/metrics`, the static dir or the built-in page, 404 for the rest,
//! CORS when asked. It forwards the channels' bytes and never formats an event.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::auth::{self, Credentials};
use crate::bus::{Bus, RedisStats};
use crate::channel::Channel;
use crate::channels::{ChannelName, Channels, Stats};
use crate::connection::Connection;
use crate::event;
use crate::hub::Refusal;
use crate::metrics::{self, Metrics};
use crate::publish::{self, PublishConfig};
use crate::stream::client_stream;

/// The built-in viewer page, served at `/` unless `--static-dir` is given.
const INDEX_HTML: &str = include_str!("../assets/index.html");

/// What a full server tells a client to wait before trying again.
pub(crate) const RETRY_AFTER_SECS: &str = "5";

/// How the routes are set up.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub events_path: String,
    pub static_dir: Option<PathBuf>,
    /// Allowed origins; `*` allows any. Empty: no CORS headers at all.
    pub cors: Vec<String>,
    /// Reconnection delay sent at the start of each stream, spread over [R, 1.5 R].
    pub retry: Option<Duration>,
    /// `--auth`: every route needs these Basic credentials (publishing has its own token).
    pub auth: Option<Credentials>,
    /// POST publishing, when `--publish-token` is given.
    pub publish: Option<PublishConfig>,
}

/// `?lastEventId=K`, for clients that can't set the `Last-Event-ID` header.
#[derive(Debug, Deserialize)]
struct ReplayQuery {
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

pub fn routes(channels: Arc<Channels>, bus: Bus, config: &ServeConfig) -> BoxedFilter<(Response,)> {
    let metrics = Arc::new(Metrics::new(channels.clone(), &bus));
    let publish = publish::route(
        channels.clone(),
        bus.clone(),
        config.publish.clone(),
        &config.events_path,
        metrics.clone(),
    );
    let routes = events(channels.clone(), bus.clone(), config)
        .or(publish)
        .unify()
        .or(stats(channels, bus))
        .unify()
        .or(metrics_route(metrics))
        .unify()
        .or(page(config))
        .unify()
        .boxed();
    let routes = match &config.auth {
        Some(credentials) => auth::guard(credentials.clone(), routes),
        None => routes,
    };
    if config.cors.is_empty() {
        return routes;
    }
    let cors = if config.cors.iter().any(|origin| origin == "*") {
        warp::cors().allow_any_origin()
    } else {
        warp::cors().allow_origins(config.cors.iter().map(String::as_str))
    };
    // The preflight is answered here, before the auth guard: browsers send no credentials on it.
    let cors = cors.allow_methods(["GET", "POST"]).allow_headers([
        "last-event-id",
        "cache-control",
        "authorization",
        "content-type",
    ]);
    routes.with(cors).map(Reply::into_response).boxed()
}

pub(crate) fn with_channels(
    channels: Arc<Channels>,
) -> impl Filter<Extract = (Arc<Channels>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || channels.clone())
}

/// `<events-path>` (the default channel) or `<events-path>/<name>`, the name matched as sent
/// (no percent-decoding); anything else is not found. (`warp::path()` can't take a `/`, and
/// `--events-path` may hold several.)
pub(crate) fn channel_path(
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

/// `Last-Event-ID` as sent. A browser echoes the id it last saw as UTF-8, which
/// `warp::header::optional::<String>` would refuse with a 400 (and an EventSource stops on a 400).
fn last_event_id_header()
-> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::header::value("last-event-id")
        .map(|value: HeaderValue| Some(String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .or(warp::any().map(|| None))
        .unify()
}

fn events(channels: Arc<Channels>, bus: Bus, config: &ServeConfig) -> BoxedFilter<(Response,)> {
    let retry = config.retry;
    channel_path(config.events_path.clone())
        .and(warp::get())
        .and(last_event_id_header())
        .and(warp::query::<ReplayQuery>())
        .and(warp::ext::optional::<Arc<Connection>>())
        .and(with_channels(channels))
        .then(
            move |name: ChannelName,
                  header: Option<String>,
                  query: ReplayQuery,
                  connection: Option<Arc<Connection>>,
                  channels: Arc<Channels>| {
                let bus = bus.clone();
                async move {
                    // The header wins: a reconnecting EventSource sends the id it last saw
                    // there, while the query still holds what the page first asked for.
                    let last_event_id = header.or(query.last_event_id);
                    let peer = connection.as_ref().map(|c| c.peer.to_string());
                    match channels.get_or_create(&name) {
                        Ok(channel) => {
                            // With --redis: what another instance published is here first.
                            bus.catch_up(&channel).await;
                            open_stream(channel, last_event_id.as_deref(), retry, connection)
                        }
                        Err(refusal) => refuse_stream(refusal, peer),
                    }
                }
            },
        )
        .boxed()
}

fn refuse_stream(refusal: Refusal, peer: Option<String>) -> Response {
    let message = match refusal {
        Refusal::Full => {
            tracing::warn!(peer, "--max-clients reached; refusing a stream with 503");
            "too many clients\n"
        }
        Refusal::TooManyChannels => {
            tracing::warn!(
                peer,
                "--max-channels reached; refusing a new channel with 503"
            );
            "too many channels\n"
        }
        Refusal::Closed => {
            return warp::reply::with_status("shutting down\n", StatusCode::SERVICE_UNAVAILABLE)
                .into_response();
        }
    };
    let mut response =
        warp::reply::with_status(message, StatusCode::SERVICE_UNAVAILABLE).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}

fn open_stream(
    channel: Arc<Channel>,
    last_event_id: Option<&str>,
    retry: Option<Duration>,
    connection: Option<Arc<Connection>>,
) -> Response {
    let peer = connection.as_ref().map(|c| c.peer.to_string());
    let subscription = match channel.subscribe(last_event_id) {
        Ok(subscription) => subscription,
        Err(refusal) => return refuse_stream(refusal, peer),
    };
    tracing::debug!(
        peer,
        channel = channel.name(),
        last_event_id,
        "stream opened"
    );
    let prelude = retry.map(|base| event::retry(spread(base)));
    let mut response =
        warp::reply::stream(client_stream(channel, subscription, prelude, connection))
            .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers proxied responses unless told not to, which would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A delay in [base, 1.5 base], drawn per client so a restart's reconnects don't all arrive at once.
fn spread(base: Duration) -> Duration {
    base.mul_f64(1.0 + fastrand::f64() * 0.5)
}

/// `/stats`: the channels' figures, and the Redis link's with `--redis`.
#[derive(Serialize)]
struct StatsReply {
    #[serde(flatten)]
    channels: Stats,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<RedisStats>,
}

fn stats(channels: Arc<Channels>, bus: Bus) -> BoxedFilter<(Response,)> {
    warp::path!("stats")
        .and(warp::get())
        .and(with_channels(channels))
        .map(move |channels: Arc<Channels>| {
            let reply = StatsReply {
                channels: channels.stats(),
                redis: bus.redis_stats(),
            };
            warp::reply::json(&reply).into_response()
        })
        .boxed()
}

fn metrics_route(metrics: Arc<Metrics>) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .map(move || {
            warp::reply::with_header(
                metrics.encode(),
                header::CONTENT_TYPE,
                metrics::CONTENT_TYPE,
            )
            .into_response()
        })
        .boxed()
}

/// `--static-dir` (which keeps every path inside it and serves `index.html` for `/`), or the
/// built-in page at `/`.
fn page(config: &ServeConfig) -> BoxedFilter<(Response,)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, HubConfig};

    fn test_routes(static_dir: Option<PathBuf>, cors: &[&str]) -> BoxedFilter<(Response,)> {
        let config = HubConfig {
            history: 10,
            client_buffer: 16,
            stall_timeout: Duration::from_secs(1),
            max_clients: None,
        };
        let channels = Arc::new(Channels::new(Arc::new(Hub::new(None)), config, 10));
        routes(
            channels,
            Bus::Local,
            &ServeConfig {
                events_path: "/events".into(),
                static_dir,
                cors: cors.iter().map(|s| s.to_string()).collect(),
                retry: None,
                auth: None,
                publish: None,
            },
        )
    }

    #[tokio::test]
    async fn serves_the_page_stats_and_404s() {
        let routes = test_routes(None, &[]);
        let page = warp::test::request().path("/").reply(&routes).await;
        assert_eq!(page.status(), 200);
        assert!(
            std::str::from_utf8(page.body())
                .unwrap()
                .contains("EventSource")
        );
        let stats = warp::test::request().path("/stats").reply(&routes).await;
        let json: serde_json::Value = serde_json::from_slice(stats.body()).unwrap();
        assert_eq!(json["consumers"], 0);
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        for path in [
            "/events/",
            "/events/.x",
            "/events/a/b",
            "/events/a%20b",
            "/eventsx",
            "/nope",
            "/index.html",
        ] {
            let reply = warp::test::request().path(path).reply(&routes).await;
            assert_eq!(reply.status(), 404, "{path}");
        }
    }

    #[tokio::test]
    async fn static_dir_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>mine</p>").unwrap();
        let routes = test_routes(Some(dir.path().to_owned()), &[]);
        let index = warp::test::request().path("/").reply(&routes).await;
        assert_eq!(index.body(), "<p>mine</p>");
        for path in ["/../etc/passwd", "/%2e%2e/etc/passwd", "/..%2fetc/passwd"] {
            let reply = warp::test::request().path(path).reply(&routes).await;
            assert_ne!(reply.status(), 200, "{path}");
        }
    }

    #[tokio::test]
    async fn answers_preflight_for_allowed_origins_only() {
        let routes = test_routes(None, &["https://app.example"]);
        let preflight = |origin: &'static str| {
            warp::test::request()
                .method("OPTIONS")
                .path("/events")
                .header("origin", origin)
                .header("access-control-request-method", "GET")
        };
        let allowed = preflight("https://app.example").reply(&routes).await;
        assert_eq!(allowed.status(), 200);
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            "https://app.example"
        );
        let other = preflight("https://evil.example").reply(&routes).await;
        assert!(other.headers().get("access-control-allow-origin").is_none());
        // A page on the allowed origin may publish: POST with a token and a body type.
        let publish = warp::test::request()
            .method("OPTIONS")
            .path("/events/build")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .reply(&routes)
            .await;
        assert_eq!(publish.status(), 200);
    }

    #[test]
    fn retry_spread_stays_within_one_and_a_half() {
        let base = Duration::from_millis(1000);
        for _ in 0..1000 {
            let delay = spread(base);
            assert!(delay >= base && delay <= base.mul_f64(1.5), "{delay:?}");
        }
    }
}
