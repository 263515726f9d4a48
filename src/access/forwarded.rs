//! Who the client is behind a proxy (`--trusted-proxy`, DESIGN.md §16). Behind nginx or Caddy
//! every connection comes from the proxy; the client's address is in the header the proxy
//! adds. It counts only when the TCP peer is a trusted proxy, and then the client is the
//! right-most address in the chain that is not itself a trusted proxy: each proxy appends the
//! address it was connected from, so what a client writes itself stays on the left, and a
//! client cannot forge its way past a per-address limit by sending a chain of its own.
//!
//! `X-Forwarded-For` is read when present, else `Forwarded` (RFC 7239, its `for=` values):
//! nginx, Caddy, HAProxy and most balancers write the former, and a client-sent `Forwarded`
//! that such a proxy passes on untouched must not win over it. A proxy that writes only
//! `Forwarded` should remove `X-Forwarded-For` (docs/deploy.md).
//!
//! The address is used for logs, the wrong-credential pacing (`guessing.rs`) and
//! `--max-streams-per-peer` (`events.rs`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use warp::filters::BoxedFilter;
use warp::http::HeaderMap;
use warp::http::header::FORWARDED;
use warp::{Filter, filters};

use crate::control::Client;

/// The ranges `--trusted-proxy` names; empty: no forwarding header is read.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

/// A request's client: its address, and the TCP port when it is the connection's own peer
/// (a forwarded address comes without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub ip: IpAddr,
    port: Option<u16>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => SocketAddr::new(self.ip, port).fmt(f),
            None => self.ip.fmt(f),
        }
    }
}

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        TrustedProxies(ranges)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical(); // an IPv4-mapped peer is its IPv4 address
        self.0.iter().any(|range| range.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> Peer {
        let direct = Peer {
            ip: peer.ip(),
            port: Some(peer.port()),
        };
        if !self.trusts(peer.ip()) {
            return direct;
        }
        let mut client = direct;
        for hop in chain(headers).iter().rev() {
            // A hop that is no address (`unknown`, an obfuscated name, garbage): the proxy
            // right of it is as far as the chain can be followed.
            let Some(ip) = *hop else {
                return client;
            };
            client = Peer { ip, port: None };
            if !self.trusts(ip) {
                return client;
            }
        }
        client // every hop a proxy: the left-most is the client
    }
}

/// Each request's client (`None` only in unit tests, whose requests have no connection).
pub fn peer(proxies: Arc<TrustedProxies>) -> BoxedFilter<(Option<Peer>,)> {
    let connection = warp::ext::optional::<Arc<Client>>();
    if proxies.0.is_empty() {
        // No header is read, so none is copied.
        return connection
            .map(|connection: Option<Arc<Client>>| {
                connection.map(|c| Peer {
                    ip: c.peer.ip(),
                    port: Some(c.peer.port()),
                })
            })
            .boxed();
    }
    connection
        .and(filters::header::headers_cloned())
        .map(move |connection: Option<Arc<Client>>, headers: HeaderMap| {
            connection.map(|c| proxies.client(c.peer, &headers))
        })
        .boxed()
}

/// The addresses a request passed through, left (the first client) to right (the last proxy);
/// `None` for a hop that is not an address. Every line of the header counts, in order.
fn chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|value| value.to_str().unwrap_or("?").split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let forwarded_for = values("x-forwarded-for");
    if !forwarded_for.is_empty() {
        return forwarded_for.into_iter().map(node).collect();
    }
    values(FORWARDED.as_str())
        .into_iter()
        .map(|element| {
            let pairs = element.split(';').map(str::trim);
            let mut fors = pairs.filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then_some(value)
            });
            // An element without `for=` (only `proto=`, say) says nothing of the hop.
            fors.next().and_then(node)
        })
        .collect()
}

/// One node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711` or a bare
/// IPv6 address, quoted or not.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    let bracketed = text.strip_prefix('[')?.split_once(']')?.0;
    bracketed.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn client(proxies: &TrustedProxies, peer: &str, headers: &[(&str, &str)]) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                warp::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        proxies.client(peer.parse().unwrap(), &map).to_string()
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "::1/128"]);
        let xff = |value| [("X-Forwarded-For", value)];
        // A client's own chain is passed over: the proxy appended the address it saw.
        assert_eq!(
            client(&trusted, "10.0.0.2:80", &xff("6.6.6.6, 203.0.113.7")),
            "203.0.113.7"
        );
        // Two proxies: the trusted hop is skipped.
        assert_eq!(
            client(&trusted, "10.0.0.2:80", &xff("203.0.113.7, 10.0.0.9")),
            "203.0.113.7"
        );
        // An untrusted peer's headers are ignored.
        assert_eq!(
            client(&trusted, "192.0.2.5:4000", &xff("203.0.113.7")),
            "192.0.2.5:4000"
        );
        // No header: the proxy itself.
        assert_eq!(client(&trusted, "10.0.0.2:80", &[]), "10.0.0.2:80");
        // Every hop trusted: the left-most.
        assert_eq!(client(&trusted, "[::1]:80", &xff("10.1.1.1")), "10.1.1.1");
        // Garbage stops the walk at the proxy that passed it on.
        assert_eq!(
            client(
                &trusted,
                "10.0.0.2:80",
                &xff("203.0.113.7, unknown, 10.0.0.9")
            ),
            "10.0.0.9"
        );
        // Every line counts, in order.
        assert_eq!(
            client(
                &trusted,
                "10.0.0.2:80",
                &[
                    ("X-Forwarded-For", "6.6.6.6"),
                    ("X-Forwarded-For", "198.51.100.1")
                ]
            ),
            "198.51.100.1"
        );
        // IPv4-mapped peers are their IPv4 address.
        assert_eq!(
            client(&trusted, "[::ffff:10.0.0.2]:80", &xff("203.0.113.7")),
            "203.0.113.7"
        );
    }

    #[test]
    fn forwarded_counts_only_without_x_forwarded_for() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let forwarded = (
            "Forwarded",
            r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.0.0.3;by=10.0.0.2"#,
        );
        assert_eq!(client(&trusted, "10.0.0.2:80", &[forwarded]), "2001:db8::7");
        assert_eq!(
            client(
                &trusted,
                "10.0.0.2:80",
                &[forwarded, ("X-Forwarded-For", "198.51.100.1")]
            ),
            "198.51.100.1"
        );
        assert_eq!(
            client(
                &trusted,
                "10.0.0.2:80",
                &[("Forwarded", "for=192.0.2.9:80")]
            ),
            "192.0.2.9"
        );
        assert_eq!(
            client(&trusted, "10.0.0.2:80", &[("Forwarded", "for=_hidden")]),
            "10.0.0.2:80"
        );
    }
}
