//! Which `Host` names are served (DESIGN.md §14). A web page on a rebinding domain (a name whose
//! DNS answer turns to 127.0.0.1 after the page loaded) is same-origin with that name, so the
//! browser lets it read whatever a loopback server answers; the one thing that gives it away is
//! the `Host` it sends. On a loopback bind only names of loopback are served, and those given
//! with `--allowed-host`; anything else is answered 403 before any route, `--auth` or CORS.
//!
//! The name is checked wherever a request carries one: the `Host` header, and the authority of
//! the request target (HTTP/2's `:authority`, or an absolute-form HTTP/1.1 target). A request
//! with neither (HTTP/1.0) is served: every browser sends `Host`, so it is no rebinding page.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::host::Authority;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::forwarded::{self, Peer, TrustedProxies};
use crate::refused::Refused;
use crate::throttle::{SharedThrottle, WARNING_PERIOD};

/// The 403's body: what was refused and why, for the person who reads it in a browser.
const REFUSAL: &str = "403 Forbidden: this server answers only requests addressed to localhost, \
a 127.x.x.x address, [::1], or a name given with --allowed-host; a web page reached under \
another name could be a DNS-rebinding attack reading this server.";

/// A host name given with `--allowed-host`, lower case, without a port (any port is served).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(String);

impl FromStr for HostName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let refuse = || {
            format!(
                "`{text}` is not a host name like example.com or [fe80::1] (any port is served, so give none)"
            )
        };
        let authority: Authority = text.parse().map_err(|_| refuse())?;
        if authority.port().is_some() || text.contains('@') || text.is_empty() {
            return Err(refuse());
        }
        Ok(HostName(normalized(authority.host())))
    }
}

/// The names served besides loopback's.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    names: Vec<HostName>,
}

impl AllowedHosts {
    pub fn new(names: Vec<HostName>) -> Self {
        AllowedHosts { names }
    }

    /// No `--allowed-host` was given: only loopback's names are served.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether a request addressed to `authority` is served.
    fn admits(&self, authority: &Authority) -> bool {
        if authority.as_str().contains('@') {
            return false; // user info has no place in Host; whatever it hides, refuse it
        }
        let host = normalized(authority.host());
        names_loopback(&host) || self.names.iter().any(|name| name.0 == host)
    }
}

/// Lower case, brackets and one trailing dot dropped (`LOCALHOST.` is `localhost`).
fn normalized(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// `localhost`, an address in 127.0.0.0/8, `::1`, or an IPv4-mapped address in 127.0.0.0/8.
/// Only exact dotted quads count: a browser writes `127.1` as `127.0.0.1` in `Host`.
fn names_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return ip.is_loopback();
    }
    host.parse::<Ipv6Addr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
}

/// `routes` for requests addressed to an allowed name; every other request gets the 403.
pub fn guard(
    hosts: AllowedHosts,
    proxies: Arc<TrustedProxies>,
    routes: BoxedFilter<(Response,)>,
) -> BoxedFilter<(Response,)> {
    static WARNING: SharedThrottle = SharedThrottle::new(WARNING_PERIOD);
    let hosts = Arc::new(hosts);
    // warp's `host::optional` compares the header with the target's authority and rejects a
    // request where they differ or the header is not an authority at all: those are refused too.
    let authority = warp::host::optional()
        .map(|authority: Option<Authority>| Ok(authority))
        .or(warp::any().map(|| Err(())))
        .unify();
    let refused = authority
        .and(forwarded::peer(proxies))
        .and_then(
            move |authority: Result<Option<Authority>, ()>, peer: Option<Peer>| {
                let admitted = match &authority {
                    Ok(None) => true,
                    Ok(Some(authority)) => hosts.admits(authority),
                    Err(()) => false,
                };
                if !admitted && let Some(requests) = WARNING.note() {
                    let peer = peer.map_or_else(|| "?".into(), |peer| peer.to_string());
                    let host = authority.ok().flatten().map(|a| a.to_string());
                    tracing::warn!(%peer, ?host, requests, "refused a Host that is not loopback (--allowed-host adds names)");
                }
                async move {
                    if admitted {
                        Err(warp::reject::not_found()) // on to the routes
                    } else {
                        Ok::<_, warp::Rejection>(
                            Refused::new(StatusCode::FORBIDDEN, REFUSAL).into_response(),
                        )
                    }
                }
            },
        );
    refused.or(routes).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(hosts: &AllowedHosts, host: &str) -> bool {
        hosts.admits(&host.parse().unwrap())
    }

    #[test]
    fn loopback_names_with_any_port_are_served() {
        let none = AllowedHosts::default();
        for host in [
            "localhost",
            "LocalHost:8080",
            "localhost.:1",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.255.3.4:9",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(admitted(&none, host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "128.0.0.1",
            "0.0.0.0:8080",
            "[::2]",
            "10.0.0.1",
            "user@localhost",
        ] {
            assert!(!admitted(&none, host), "{host}");
        }
    }

    #[test]
    fn allowed_names_are_served_with_any_port() {
        let names: Vec<HostName> = ["My.Box", "[fe80::1]"]
            .iter()
            .map(|name| name.parse().unwrap())
            .collect();
        let hosts = AllowedHosts::new(names);
        for host in ["my.box", "MY.BOX:3000", "[fe80::1]:80", "localhost"] {
            assert!(admitted(&hosts, host), "{host}");
        }
        assert!(!admitted(&hosts, "other.box"));
        for bad in [
            "",
            "my.box:8080",
            "a b",
            "me@my.box",
            "http://my.box",
            "my.box/x",
        ] {
            assert!(bad.parse::<HostName>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_foreign_host_is_refused_before_the_routes() {
        let routes = warp::any()
            .map(|| "served")
            .map(Reply::into_response)
            .boxed();
        let guarded = guard(AllowedHosts::default(), Arc::default(), routes);
        let answer = |host: Option<&'static str>| {
            let request = warp::test::request().path("/stats");
            let request = match host {
                Some(host) => request.header("host", host),
                None => request,
            };
            let guarded = guarded.clone();
            async move { request.reply(&guarded).await }
        };
        let refused = answer(Some("rebind.example:8080")).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(
            std::str::from_utf8(refused.body())
                .unwrap()
                .contains("DNS-rebinding")
        );
        assert_eq!(
            answer(Some("not a host")).await.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(answer(Some("127.0.0.1:8080")).await.body(), "served");
        assert_eq!(answer(None).await.body(), "served");
    }
}
