//! HTTP Basic access control (`--auth USER:PASSWORD`) in front of every route: the page, the
//! streams, `/stats`, the static dir. A request without the right credentials gets 401 with a
//! `WWW-Authenticate` challenge, so a browser asks once and then sends them with every request
//! of the origin, its EventSource included. CORS preflights never reach this guard (browsers
//! send no credentials on them); the CORS wrapper answers them. A POST with a bearer token is
//! a publisher's: the publish route checks that token (`--publish-token`) instead. Repeated
//! wrong credentials from one peer are answered later and later, then 429 (`guessing.rs`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use headers::Header as _;
use headers::authorization::{Authorization, Basic, Bearer, Credentials as Scheme};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::digest::SecretDigest;
use super::forwarded::{self, Peer, TrustedProxies};
use super::guessing::{self, Guesses, Penalty};
use crate::raw_header::optional_header;
use crate::refused::Refused;
use crate::throttle::{SharedThrottle, WARNING_PERIOD};

/// The one user and password the server accepts. Never printed: `Debug` hides the password.
/// Not `PartialEq`: the only comparison is the constant-time one in `admit`.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    /// SHA-256 of `user:password`, as a client sends it inside the base64 of
    /// `Authorization: Basic`. Digests are compared, so not even the length shows.
    digest: SecretDigest,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl FromStr for Credentials {
    type Err = String;

    /// `USER:PASSWORD`, split at the first colon: a user name can't hold one (RFC 7617), a
    /// password may.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Credentials {
                user: user.to_owned(),
                digest: SecretDigest::of(text.as_bytes()),
            }),
            _ => Err("expected USER:PASSWORD, both non-empty".into()),
        }
    }
}

impl Credentials {
    /// Whether an `Authorization` header value carries these credentials. The comparison of
    /// digests takes the same time wherever the first differing byte is, whatever the lengths.
    fn admit(&self, value: &HeaderValue) -> Verdict {
        if !has_scheme(value, "basic") {
            return Verdict::Missing;
        }
        let Some(basic) = authorization::<Basic>(value) else {
            return Verdict::Wrong;
        };
        let given = format!("{}:{}", basic.username(), basic.password());
        if self.digest.matches(given.as_bytes()) {
            Verdict::Admitted
        } else {
            Verdict::Wrong
        }
    }
}

/// What a request's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Admitted,
    /// No `Authorization: Basic` header: a browser's first request, before it asks the user.
    Missing,
    /// Credentials that are not the right ones: a failed attempt, logged.
    Wrong,
}

/// Whether the header's scheme is `scheme` (lower case; compared case-insensitively).
fn has_scheme(value: &HeaderValue, scheme: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() > scheme.len()
        && bytes[scheme.len()] == b' '
        && bytes[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
}

/// `routes` behind the credentials: a request without them is answered 401 and goes no further.
pub fn guard(
    credentials: Credentials,
    guesses: Arc<Guesses>,
    proxies: Arc<TrustedProxies>,
    routes: BoxedFilter<(Response,)>,
) -> BoxedFilter<(Response,)> {
    let credentials = Arc::new(credentials);
    let warning = Arc::new(SharedThrottle::new(WARNING_PERIOD));
    let refused = warp::method()
        .and(optional_header("authorization"))
        .and(forwarded::peer(proxies))
        .and_then(
            move |method: Method, header: Option<HeaderValue>, peer: Option<Peer>| {
                let verdict = match header {
                    // A publisher's POST carries the --publish-token instead (one request has
                    // one Authorization header); the publish route checks it.
                    Some(value)
                        if method == Method::POST && authorization::<Bearer>(&value).is_some() =>
                    {
                        Verdict::Admitted
                    }
                    Some(value) => credentials.admit(&value),
                    None => Verdict::Missing,
                };
                if verdict == Verdict::Wrong
                    && let Some(attempts) = warning.note()
                {
                    // Every served request carries its connection; only unit tests lack one.
                    let peer = peer.map_or_else(|| "?".into(), |peer| peer.to_string());
                    tracing::warn!(%peer, attempts, "refused wrong credentials (--auth)");
                }
                let penalty = match verdict {
                    Verdict::Wrong => guesses.failed(peer.map(|peer| peer.ip)),
                    Verdict::Admitted | Verdict::Missing => Penalty::None,
                };
                async move {
                    match (verdict, penalty) {
                        // Not refused: on to the routes.
                        (Verdict::Admitted, _) => Err(warp::reject::not_found()),
                        (_, Penalty::TooMany(wait)) => Ok(guessing::too_many(wait)),
                        (_, Penalty::Delay(delay)) => {
                            tokio::time::sleep(delay).await;
                            Ok(challenge())
                        }
                        (_, Penalty::None) => Ok::<_, warp::Rejection>(challenge()),
                    }
                }
            },
        );
    refused.or(routes).unify().boxed()
}

/// 401 with the challenge that makes a browser ask for a user name and password.
fn challenge() -> Response {
    Refused::new(StatusCode::UNAUTHORIZED, "authentication required")
        .with(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sse-broadcast\", charset=\"UTF-8\""),
        )
        .into_response()
}

/// The `Authorization` value read as scheme `C` (`Basic` or `Bearer`, case-insensitive), or
/// `None` when it uses another scheme or is malformed.
pub fn authorization<C: Scheme>(value: &HeaderValue) -> Option<Authorization<C>> {
    Authorization::<C>::decode(&mut std::iter::once(value)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use headers::authorization::Authorization;

    fn header(joined: &str) -> HeaderValue {
        let (user, password) = joined.split_once(':').unwrap();
        let mut values = Vec::new();
        headers::Header::encode(&Authorization::basic(user, password), &mut values);
        values.remove(0)
    }

    fn raw(text: &'static str) -> HeaderValue {
        HeaderValue::from_static(text)
    }

    #[test]
    fn splits_at_the_first_colon_and_hides_the_password() {
        let credentials: Credentials = "me:a:b:".parse().unwrap();
        assert_eq!(credentials.user, "me");
        assert_eq!(credentials.admit(&header("me:a:b:")), Verdict::Admitted);
        assert!(!format!("{credentials:?}").contains("a:b"));
        for bad in ["me", ":pw", "me:", ""] {
            assert!(bad.parse::<Credentials>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn admits_only_the_exact_pair() {
        let credentials: Credentials = "me:pw".parse().unwrap();
        assert_eq!(credentials.admit(&raw("bAsIc bWU6cHc=")), Verdict::Admitted);
        assert_eq!(credentials.admit(&header("me:pw ")), Verdict::Wrong);
        assert_eq!(credentials.admit(&header("me:p")), Verdict::Wrong);
        assert_eq!(credentials.admit(&header("you:pw")), Verdict::Wrong);
        assert_eq!(credentials.admit(&raw("Basic !!!")), Verdict::Wrong);
        assert_eq!(credentials.admit(&raw("Bearer bWU6cHc=")), Verdict::Missing);
        assert_eq!(credentials.admit(&raw("")), Verdict::Missing);
    }
}
