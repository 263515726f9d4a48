//! Whether a request comes from a page of this very server. Browsers send `Origin` on a
//! same-origin `fetch` POST too, so with `--cors` naming other sites the page this server serves
//! itself (`--static-dir`) was refused. A same-origin request is no CORS request: it skips the
//! CORS checks and gets no CORS headers.
//!
//! Same origin here means the `Origin`'s host and port are those the request was addressed to
//! (`Host`, or HTTP/2's `:authority`; an `Origin` without a port has its scheme's default). The
//! schemes are not compared: behind a proxy that ends TLS, the server sees http for a page the
//! browser loaded over https. That gives nothing away: an answer without CORS headers is shown by
//! a browser to no page of another origin, and without `--cors` every request is served this way.

use std::convert::Infallible;

use warp::host::Authority;
use warp::http::Uri;
use warp::{Filter, Rejection};

/// Passes requests whose being same-origin is `same`; rejects the others as not found, before
/// anything else looks at them (so another branch of an `or` answers them, body untouched).
pub fn when(same: bool) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    is_same_origin()
        .and_then(move |is_same: bool| async move {
            if is_same == same {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
}

/// Whether the request carries an `Origin` naming the host and port it was addressed to.
fn is_same_origin() -> impl Filter<Extract = (bool,), Error = Infallible> + Clone {
    // warp refuses a `Host` that differs from the target's authority: no origin is the same then.
    let addressed = warp::host::optional().or(warp::any().map(|| None)).unify();
    warp::header::optional::<String>("origin")
        .or(warp::any().map(|| None))
        .unify()
        .and(addressed)
        .map(|origin: Option<String>, addressed: Option<Authority>| {
            origin
                .zip(addressed)
                .is_some_and(|(origin, addressed)| same(&origin, &addressed))
        })
}

/// `origin` (`scheme://host[:port]`) names `addressed`'s host and port.
fn same(origin: &str, addressed: &Authority) -> bool {
    let Ok(origin) = origin.parse::<Uri>() else {
        return false; // "null" (a sandboxed page, a file) is nobody's origin
    };
    let (Some(scheme), Some(host)) = (origin.scheme_str(), origin.host()) else {
        return false;
    };
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let port = origin.port_u16().unwrap_or(default_port);
    host.eq_ignore_ascii_case(addressed.host())
        && addressed.port_u16().unwrap_or(default_port) == port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_must_match() {
        let addressed = |text: &str| text.parse::<Authority>().unwrap();
        let cases = [
            ("http://127.0.0.1:8080", "127.0.0.1:8080", true),
            ("https://App.Example", "app.example", true),
            ("https://app.example", "app.example:443", true),
            ("http://app.example", "app.example:80", true),
            ("https://app.example", "app.example:8443", false),
            ("http://127.0.0.1:8080", "127.0.0.1:8081", false),
            ("http://localhost:8080", "127.0.0.1:8080", false),
            ("https://evil.example", "app.example", false),
            ("null", "app.example", false),
            ("ftp://app.example", "app.example", false),
        ];
        for (origin, host, expected) in cases {
            assert_eq!(same(origin, &addressed(host)), expected, "{origin} {host}");
        }
    }
}
