//! The routes: one warp filter chain of the event streams (`events.rs`, the default channel and
//! named ones; several channels on one stream in `multi_stream.rs`; the bodies are `stream/`'s),
//! publishing (`publish.rs`), `/stats` and `/metrics` (`stats.rs`, `metrics.rs`), the static
//! dir or the built-in page (`page.rs`), 404 for the rest, and CORS when asked, set up by
//! `ServeConfig` (`serve_config.rs`). Who may read and publish is `access/`'s decision (`--auth`,
//! tokens per channel, the `Host` check of a loopback bind); the routes ask it. They forward the
//! channels' bytes and never format an event; how connections carry them is serving's business.

mod events;
mod filters;
mod metrics;
mod multi_stream;
mod page;
mod presence;
mod probes;
mod publish;
mod refusal;
mod same_origin;
mod sse_reply;
mod static_dir;
mod stats;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::access::{Authorizer, Gate, Guesses, Tokens};
use crate::bus::Bus;
use crate::channels::Channels;
use crate::presence::Presence;
use crate::serve_config::ServeConfig;
use metrics::Metrics;
use probes::Readiness;

/// The filter chain; `tokens` is `config.tokens` loaded (`Tokens::load`), `authorizer`
/// `config.authorize`'s client, `presence` there with `--presence`.
pub fn routes(
    channels: Arc<Channels>,
    bus: Bus,
    config: &ServeConfig,
    tokens: Option<Tokens>,
    authorizer: Option<Authorizer>,
    presence: Option<Arc<Presence>>,
) -> BoxedFilter<(Response,)> {
    let proxies = Arc::new(config.trusted_proxies.clone());
    let gate = Gate::new(tokens, proxies.clone(), authorizer);
    let gate_for_presence = gate.clone();
    let readiness = Arc::new(Readiness::new(channels.control().clone(), bus.clone()));
    let metrics = Arc::new(Metrics::new(
        channels.clone(),
        &bus,
        readiness.clone(),
        &gate,
    ));
    let guesses = Arc::new(Guesses::default());
    let publish = publish::route(
        channels.clone(),
        bus.clone(),
        config.publish.clone(),
        &config.events_path,
        gate.clone(),
        metrics.clone(),
        guesses.clone(),
    );
    let lease = presence.as_ref().map(|presence| presence.lease());
    let routes = events::route(
        channels.clone(),
        bus.clone(),
        config,
        gate.clone(),
        presence.clone(),
    )
    .or(publish)
    .unify()
    .or(stats::stats(channels, bus, gate.clone(), lease))
    .unify()
    .or(stats::metrics(metrics, gate))
    .unify()
    .or(page::route(config))
    .unify()
    .boxed();
    let routes = match presence {
        Some(presence) => presence::route(presence, gate_for_presence)
            .or(routes)
            .unify()
            .boxed(),
        None => routes,
    };
    let routes = match &config.auth {
        Some(credentials) => {
            crate::access::auth_guard(credentials.clone(), guesses, proxies.clone(), routes)
        }
        None => routes,
    };
    let routes = with_cors(routes, &config.cors);
    // A rebinding page gets nothing, not even a CORS preflight's answer.
    let routes = match &config.allowed_hosts {
        Some(hosts) => crate::access::hosts_guard(hosts.clone(), proxies, routes),
        None => routes,
    };
    // Outermost: the probes carry no data, and a prober knows no credentials or host name.
    probes::route(readiness).or(routes).unify().boxed()
}

/// `routes` with CORS headers for `origins`; as they are when none is given.
///
/// A named origin may send credentials (`new EventSource(url, {withCredentials: true})`): the
/// token cookie, or `--auth`'s Basic credentials, which is what a page on another origin of the
/// same application needs to read a private channel. `*` allows any origin to read, but without
/// credentials: echoing every origin with credentials allowed would let any site a reader visits
/// read that reader's private channels. The allowed origin is echoed, never `*` (browsers refuse
/// `*` with credentials), so every answer varies by `Origin` and says so to caches. A request
/// from a page of this server is same-origin, not CORS, whatever the list.
fn with_cors(routes: BoxedFilter<(Response,)>, origins: &[String]) -> BoxedFilter<(Response,)> {
    if origins.is_empty() {
        return routes;
    }
    let any = origins.iter().any(|origin| origin == "*");
    let cors = if any {
        warp::cors().allow_any_origin()
    } else {
        warp::cors().allow_origins(origins.iter().map(String::as_str))
    };
    // The preflight is answered here, before the auth guard: browsers send no credentials on it.
    let cors = cors
        .allow_credentials(!any)
        .allow_methods(["GET", "POST"])
        .allow_headers([
            "last-event-id",
            "cache-control",
            "authorization",
            "content-type",
        ]);
    // A page of this server is no other site: its requests skip CORS (`same_origin.rs`).
    let same_origin = same_origin::when(true).and(routes.clone());
    let cross_origin = same_origin::when(false).and(routes.with(cors).map(Reply::into_response));
    same_origin
        .or(cross_origin)
        .unify()
        .map(|mut response: Response| {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("origin"));
            response
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::access::TrustedProxies;
    use crate::channel::ChannelConfig;
    use crate::control::Control;
    use crate::serve_config::StaticAccess;

    /// Ten channels at most, each keeping ten events, on a control with no client limit.
    pub(super) fn test_channels() -> Arc<Channels> {
        let config = ChannelConfig {
            history: 10,
            history_bytes: 16 << 20,
            client_buffer: 16,
            stall_timeout: Duration::from_secs(1),
        };
        Arc::new(Channels::new(Arc::new(Control::new(None)), config, 10))
    }

    fn test_routes(static_dir: Option<PathBuf>, cors: &[&str]) -> BoxedFilter<(Response,)> {
        routes(
            test_channels(),
            Bus::Local,
            &ServeConfig {
                events_path: "/events".into(),
                static_dir,
                static_access: StaticAccess::default(),
                cors: cors.iter().map(|s| s.to_string()).collect(),
                retry: None,
                max_stream_age: None,
                auth: None,
                tokens: None,
                authorize: None,
                trusted_proxies: TrustedProxies::default(),
                allowed_hosts: None,
                publish: None,
            },
            None,
            None,
            None,
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
            assert_eq!(reply.status(), 404, "{path}");
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
}
