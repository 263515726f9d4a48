//! The probes a load balancer or Kubernetes asks (DESIGN.md §16): `GET /healthz`, 200 while the
//! process serves (liveness), and `GET /readyz`, 200 while it takes new streams and 503 with a
//! one-line reason when it does not: shutting down (a drain), Redis unreachable with `--redis`
//! (a cluster: no node answering, or the cluster failed), or `--max-clients` streams open. The
//! same verdict is `sse_broadcast_ready` in `/metrics`.
//!
//! They sit outside `--auth`, tokens and the `Host` check: a prober sends no credentials and
//! addresses the pod by its IP, and the answers carry no data (a word and a reason).

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::bus::Bus;
use crate::control::Control;

/// What readiness is read from.
#[derive(Debug)]
pub struct Readiness {
    control: Arc<Control>,
    bus: Bus,
}

impl Readiness {
    pub fn new(control: Arc<Control>, bus: Bus) -> Self {
        Readiness { control, bus }
    }

    /// Why a new stream would not be taken now; `None` when it would.
    pub fn not_ready(&self) -> Option<&'static str> {
        if self.control.is_draining() {
            Some("shutting down; new streams are refused")
        } else if let Some(reason) = self.bus.redis_unready() {
            Some(reason)
        } else if self.control.is_full() {
            Some("--max-clients streams are open")
        } else {
            None
        }
    }
}

/// `/healthz` and `/readyz`; every other request is left to the routes after them.
pub fn route(readiness: Arc<Readiness>) -> BoxedFilter<(Response,)> {
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| plain(StatusCode::OK, "ok"));
    let ready = warp::path!("readyz")
        .and(warp::get())
        .map(move || match readiness.not_ready() {
            None => plain(StatusCode::OK, "ready"),
            Some(reason) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {reason}"),
            ),
        });
    health.or(ready).unify().boxed()
}

/// `text` and a line end, never cached: a probe's answer is about now.
fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = warp::reply::with_status(format!("{text}\n"), status).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_until_full() {
        let control = Arc::new(Control::new(Some(1)));
        let routes = route(Arc::new(Readiness::new(control.clone(), Bus::Local)));
        let ask = |path: &'static str| warp::test::request().path(path).reply(&routes);
        assert_eq!(ask("/healthz").await.body(), "ok\n");
        assert_eq!(ask("/readyz").await.status(), StatusCode::OK);
        let _slot = control.open_stream().unwrap();
        let full = ask("/readyz").await;
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.body(), "not ready: --max-clients streams are open\n");
        assert_eq!(ask("/healthz").await.status(), StatusCode::OK);
    }
}
