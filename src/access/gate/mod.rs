//! Who may read and publish which channel (DESIGN.md §10). A request's token is taken from the
//! first carrier it has: `Authorization: Bearer`, the cookie `sse_broadcast_token`, the query
//! `?access_token=` (an EventSource can set no header). It is verified (`token.rs`) only when a
//! channel needs it, so public channels cost no signature check. Refusals are 401 or 403 with
//! RFC 6750's challenge; each is logged at warn with the peer, one line per period at most, and
//! the token never appears in any of them.
//!
//! A publisher's token counts only in the `Authorization` header: a cookie rides along with any
//! request a browser makes, so a page on another site could publish in a reader's name.
//!
//! With `--authorize-url` (`authorize/`), what a token or `--public` does not grant is asked of
//! the application instead of refused; a token that fails then is no warning (the application
//! may know the request by its cookie), and the backend's answer stands for every channel the
//! request names that is not public. What tokens decide alone is in `by_token.rs`.

use std::net::IpAddr;
use std::sync::Arc;

use headers::authorization::Bearer;
use serde::Deserialize;
use warp::http::HeaderValue;
use warp::{Filter, Rejection, filters};

use super::auth::authorization;
use super::authorize::{self, Authorizer, Forward, Question};
use super::denied::Denied;
use super::digest::SecretDigest;
use super::forwarded::{self, Peer, TrustedProxies};
use super::grant::Grant;
use super::token::Tokens;
use crate::channels::ChannelName;
use crate::raw_header::optional_header;
use crate::throttle::{SharedThrottle, WARNING_PERIOD};

mod by_token;

/// The cookie an application sets for the page's EventSource.
pub const COOKIE: &str = "sse_broadcast_token";

/// The tokens' rules, shared by every route, with the one throttle of their warnings, and the
/// proxies whose word on the client's address counts.
#[derive(Debug)]
pub struct Gate {
    /// `None`: no key is set, and reading needs no token.
    tokens: Option<Tokens>,
    warnings: SharedThrottle,
    proxies: Arc<TrustedProxies>,
    /// `--authorize-url`: asked what a token or `--public` does not grant.
    authorizer: Option<Authorizer>,
}

impl Gate {
    pub fn new(
        tokens: Option<Tokens>,
        proxies: Arc<TrustedProxies>,
        authorizer: Option<Authorizer>,
    ) -> Arc<Self> {
        Arc::new(Gate {
            tokens,
            warnings: SharedThrottle::new(WARNING_PERIOD),
            proxies,
            authorizer,
        })
    }

    /// `--authorize-url`'s counters, when it is set.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        if let Some(authorizer) = &self.authorizer {
            authorizer.register_metrics(registry);
        }
    }
}

/// `?access_token=`, for an EventSource, which can set no header.
#[derive(Debug, Default, Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// One request's standing: the gate, the token it carries (not yet verified), its peer.
#[derive(Debug)]
pub struct Access {
    gate: Arc<Gate>,
    /// From the `Authorization` header (`Bearer`), whatever else the request carries.
    header: Option<String>,
    /// From the first carrier present: the header, the cookie, then the query.
    carried: Option<String>,
    /// The client (`forwarded.rs`); only unit tests lack one.
    peer: Option<Peer>,
    /// What the authorization backend is told (empty without `--authorize-url`).
    forward: Forward,
}

/// Each request's `Access`. It never rejects: routes decide what their channel needs.
pub fn access(gate: Arc<Gate>) -> impl Filter<Extract = (Access,), Error = Rejection> + Clone {
    let query = warp::query::<TokenQuery>()
        .or(warp::any().map(TokenQuery::default))
        .unify();
    optional_header("authorization")
        .and(filters::cookie::optional::<String>(COOKIE))
        .and(query)
        .and(forwarded::peer(gate.proxies.clone()))
        .and(authorize::forward(gate.authorizer.is_some()))
        .map(
            move |bearer: Option<HeaderValue>,
                  cookie: Option<String>,
                  query: TokenQuery,
                  peer: Option<Peer>,
                  forward: Forward| {
                let header = bearer
                    .as_ref()
                    .and_then(authorization::<Bearer>)
                    .map(|bearer| bearer.token().to_owned());
                let carried = header.clone().or(cookie).or(query.access_token);
                Access {
                    gate: gate.clone(),
                    header,
                    carried,
                    peer,
                    forward,
                }
            },
        )
}

impl Access {
    /// Whether the stream of `channels` may open, and which of them (the authorization backend
    /// may narrow them): with `Some(grant)` when a token or the backend decided (its end and its
    /// user), `None` when nothing had to (no key, or every channel public).
    pub async fn may_read(
        &self,
        channels: Vec<ChannelName>,
    ) -> Result<(Vec<ChannelName>, Option<Grant>), Denied> {
        let Some(authorizer) = &self.gate.authorizer else {
            let grant = self.may_read_by_token(&channels)?;
            return Ok((channels, grant));
        };
        let private: Vec<ChannelName> = channels
            .iter()
            .filter(|name| !authorizer.is_public(name))
            .cloned()
            .collect();
        if private.is_empty() {
            return Ok((channels, None));
        }
        if let (Some(tokens), Some(token)) = (&self.gate.tokens, &self.carried)
            && let Ok(grant) = tokens.verify(token)
            && private.iter().all(|name| grant.may_subscribe(name))
        {
            return Ok((channels, Some(grant)));
        }
        authorizer
            .may_read(&self.question(&private, "GET"), channels)
            .await
    }

    /// Whether a POST may publish to `channel`: by `may_publish_by_token`'s rules, else by the
    /// authorization backend's word.
    pub async fn may_publish(
        &self,
        channel: &ChannelName,
        publish_token: Option<&SecretDigest>,
    ) -> Result<(), Denied> {
        let Some(authorizer) = &self.gate.authorizer else {
            return Ok(self.may_publish_by_token(channel, publish_token)?);
        };
        let by_publish_token = publish_token
            .zip(self.header.as_ref())
            .is_some_and(|(expected, given)| expected.matches(given.trim().as_bytes()));
        let by_token = || {
            let (Some(tokens), Some(token)) = (&self.gate.tokens, &self.header) else {
                return false;
            };
            tokens
                .verify(token)
                .is_ok_and(|grant| grant.may_publish(channel))
        };
        if by_publish_token || by_token() {
            return Ok(());
        }
        let channels = std::slice::from_ref(channel);
        authorizer
            .may_publish(&self.question(channels, "POST"))
            .await
    }

    fn question<'a>(&'a self, channels: &'a [ChannelName], method: &'static str) -> Question<'a> {
        Question {
            forward: &self.forward,
            channels,
            method,
            client: self.peer,
        }
    }

    /// Who reads, for `--presence`: the `sub` of `grant` (the token `may_read` verified), or
    /// of a valid token the request carries to a public channel; `None`: anonymous. A token
    /// that does not verify there makes an anonymous reader, quietly: the channel needs none.
    pub fn reader(&self, grant: Option<&Grant>) -> Option<Box<str>> {
        if let Some(grant) = grant {
            return grant.user.clone();
        }
        let tokens = self.gate.tokens.as_ref()?;
        tokens.verify(self.carried.as_deref()?).ok()?.user
    }

    /// Whether `/presence/NAME` may name `channel`'s readers: when its stream could be read
    /// (anyone without tokens or `--authorize-url`). A private channel refuses what its stream
    /// would; a public one gives anyone its counts, and its names to a token that may read it
    /// or, beside `--authorize-url`, to whom the backend lets read it (asked as for a stream of
    /// that channel alone; a refusal or no answer gives the counts only).
    pub async fn may_name_readers(&self, channel: &ChannelName) -> Result<bool, Denied> {
        let tokens = self.gate.tokens.as_ref();
        let authorizer = self.gate.authorizer.as_ref();
        let public = tokens.is_some_and(|tokens| tokens.is_public(channel))
            || authorizer.is_some_and(|authorizer| authorizer.is_public(channel));
        if !public {
            return self.may_read(vec![channel.clone()]).await.map(|_| true);
        }
        let grant = tokens.zip(self.carried.as_deref());
        if matches!(grant.map(|(tokens, token)| tokens.verify(token)),
                    Some(Ok(grant)) if grant.may_subscribe(channel))
        {
            return Ok(true);
        }
        let Some(authorizer) = authorizer else {
            return Ok(false);
        };
        let channels = std::slice::from_ref(channel);
        let question = self.question(channels, "GET");
        Ok(authorizer
            .may_read(&question, channels.to_vec())
            .await
            .is_ok())
    }

    /// The request's client.
    pub fn peer(&self) -> Option<Peer> {
        self.peer
    }

    /// The peer of a request with a bearer token in its header: refused, it was a guess.
    pub fn bearer_peer(&self) -> Option<IpAddr> {
        self.header.as_ref().and(self.peer).map(|peer| peer.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::denied::INVALID_TOKEN;
    use crate::access::token::{KeySource, Secret, TokenConfig};
    use http_body_util::BodyExt;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;
    use std::time::{SystemTime, UNIX_EPOCH};
    use warp::http::StatusCode;
    use warp::reply::Reply;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn gate(with_tokens: bool) -> Arc<Gate> {
        Gate::new(
            with_tokens.then(|| {
                Tokens::load(&TokenConfig {
                    key: KeySource::Secret(Secret::new(SECRET.to_vec()).unwrap()),
                    audience: None,
                    public: vec!["news".parse().unwrap()],
                })
                .unwrap()
            }),
            Arc::default(),
            None,
        )
    }

    fn mint(rights: serde_json::Value) -> String {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let key = EncodingKey::from_secret(SECRET).unwrap();
        let claims = json!({"exp": exp, "sse_broadcast": rights});
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    async fn access(gate: Arc<Gate>, request: warp::test::RequestBuilder) -> Access {
        request.filter(&super::access(gate)).await.unwrap()
    }

    fn names(names: &[&str]) -> Vec<ChannelName> {
        names.iter().map(|name| name.parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn carriers_in_order_header_cookie_query() {
        let good = mint(json!({"subscribe": ["a"]}));
        let gate = gate(true);
        let request = || warp::test::request().path("/events/a");
        let by_header = request().header("authorization", format!("Bearer {good}"));
        let by_cookie = request().header("cookie", format!("x=1; {COOKIE}={good}"));
        let by_query = warp::test::request().path(&format!("/events/a?access_token={good}"));
        for carried in [by_header, by_cookie, by_query] {
            let access = access(gate.clone(), carried).await;
            assert!(access.may_read_by_token(&names(&["a"])).unwrap().is_some());
        }
        // The header comes first: a bad one is not saved by a good cookie.
        let both = request()
            .header("authorization", "Bearer nonsense")
            .header("cookie", format!("{COOKIE}={good}"));
        let refused = access(gate.clone(), both)
            .await
            .may_read_by_token(&names(&["a"]));
        assert_eq!(
            refused.unwrap_err().into_response().status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn refusals_carry_the_challenges() {
        let gate = gate(true);
        let none = access(gate.clone(), warp::test::request()).await;
        let refused = none
            .may_read_by_token(&names(&["a"]))
            .unwrap_err()
            .into_response();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refused.headers()["www-authenticate"], INVALID_TOKEN);
        // Public channels need nothing, and a mix needs a token for the rest.
        assert!(none.may_read_by_token(&names(&["news"])).unwrap().is_none());
        let token = mint(json!({"subscribe": ["a"]}));
        let some = access(
            gate.clone(),
            warp::test::request().header("authorization", format!("Bearer {token}")),
        )
        .await;
        assert!(some.may_read_by_token(&names(&["news", "a"])).is_ok());
        let refused = some
            .may_read_by_token(&names(&["a", "b"]))
            .unwrap_err()
            .into_response();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("insufficient_scope")
        );
        let body = refused.into_body().collect().await.unwrap().to_bytes();
        assert!(body.ends_with(b"channel b\n"), "{body:?}");
        assert_eq!(
            some.may_read_all().unwrap_err().into_response().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn publishing_takes_the_publish_token_or_a_header_token() {
        let build = names(&["build"]).remove(0);
        let publish_token = SecretDigest::of(b"s3cret");
        let s3cret = Some(&publish_token);
        let bearer =
            |token: &str| warp::test::request().header("authorization", format!("Bearer {token}"));
        let plain = access(gate(false), bearer("s3cret")).await;
        assert!(plain.may_publish_by_token(&build, s3cret).is_ok());
        let wrong = access(gate(false), bearer("s3cre")).await;
        assert_eq!(
            wrong
                .may_publish_by_token(&build, s3cret)
                .unwrap_err()
                .into_response()
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let token = mint(json!({"publish": ["build"]}));
        let with_claim = access(gate(true), bearer(&token)).await;
        assert!(with_claim.may_publish_by_token(&build, s3cret).is_ok());
        assert!(with_claim.may_publish_by_token(&build, None).is_ok());
        let other = names(&["other"]).remove(0);
        assert_eq!(
            with_claim
                .may_publish_by_token(&other, None)
                .unwrap_err()
                .into_response()
                .status(),
            StatusCode::FORBIDDEN
        );
        // A cookie does not publish.
        let by_cookie = access(
            gate(true),
            warp::test::request().header("cookie", format!("{COOKIE}={token}")),
        )
        .await;
        assert_eq!(
            by_cookie
                .may_publish_by_token(&build, None)
                .unwrap_err()
                .into_response()
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
