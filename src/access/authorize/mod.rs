//! `--authorize-url` (DESIGN.md §17): the application itself decides who reads and publishes,
//! with the session cookie it already has. `gate/` asks here whenever a token or `--public`
//! does not already grant a request; the backend is asked (`client.rs`), its answer read
//! (`decision.rs`) and kept for `--authorize-cache` (`cache.rs`). A question already being
//! asked is not asked again: the requests that ask it meanwhile wait for its answer
//! (`inflight.rs`), counted as merged. Each decision is counted in `/metrics` and logged with the
//! client, channels, method and the user the backend named, never a cookie or token; a backend
//! that gives no decision is warned about, rate-limited.

mod cache;
mod client;
mod decision;
mod inflight;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use reqwest::Url;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, header};

use super::denied::{Denied, insufficient_scope};
use super::forwarded::Peer;
use super::grant::Grant;
use super::pattern::Pattern;
use crate::channels::ChannelName;
use crate::throttle::{SharedThrottle, WARNING_PERIOD};
use cache::{Cache, Key};
use client::Backend;
pub use decision::{Allowance, Decision};
use inflight::InFlight;

/// `--authorize-url`, `--authorize-timeout`, `--authorize-cache` (0: nothing kept).
#[derive(Clone)]
pub struct AuthorizeConfig {
    pub url: Url,
    pub timeout: Duration,
    pub cache: Duration,
    /// `--public`: channels anyone reads, never asked about.
    pub public: Vec<Pattern>,
}

impl fmt::Debug for AuthorizeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A password in the URL stays out of every debug print.
        let mut shown = self.url.clone();
        let _ = shown.set_password(None);
        f.debug_struct("AuthorizeConfig")
            .field("url", &shown.as_str())
            .field("timeout", &self.timeout)
            .field("cache", &self.cache)
            .field("public", &self.public)
            .finish()
    }
}

/// The request's headers the backend gets as they came: its credentials and where it came from.
#[derive(Debug, Default, Clone)]
pub struct Forward {
    pub cookie: Option<HeaderValue>,
    pub authorization: Option<HeaderValue>,
    pub origin: Option<HeaderValue>,
}

/// Each request's `Forward` when the backend is to be asked (`asking`); an empty one otherwise,
/// so that a server without `--authorize-url` copies no header.
pub fn forward(asking: bool) -> BoxedFilter<(Forward,)> {
    if !asking {
        return warp::any().map(Forward::default).boxed();
    }
    warp::header::headers_cloned()
        .map(|headers: HeaderMap| Forward {
            cookie: cookies(&headers),
            authorization: headers.get(header::AUTHORIZATION).cloned(),
            origin: headers.get(header::ORIGIN).cloned(),
        })
        .boxed()
}

/// Every `Cookie` line of a request as one: over HTTP/2 a browser sends each cookie as a line of
/// its own (RFC 9113 §8.2.3), and the backend is to get them all, joined as RFC 6265 writes them.
fn cookies(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut lines = headers.get_all(header::COOKIE).iter();
    let first = lines.next()?;
    let mut joined = first.as_bytes().to_vec();
    for line in lines {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(line.as_bytes());
    }
    // Bytes of valid header values, joined by "; ", are a valid header value.
    HeaderValue::from_bytes(&joined).ok()
}

/// One question to the backend.
pub struct Question<'a> {
    pub forward: &'a Forward,
    /// The channels the request names that `--public` does not open.
    pub channels: &'a [ChannelName],
    /// `GET` (a stream) or `POST` (publishing).
    pub method: &'static str,
    pub client: Option<Peer>,
}

/// Channel names joined by commas, as `X-SSE-Channels` and the log show them.
struct Joined<'a>(&'a [ChannelName]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, name) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            f.write_str(name.as_str())?;
        }
        Ok(())
    }
}

impl Question<'_> {
    fn channels_joined(&self) -> String {
        Joined(self.channels).to_string()
    }

    /// The digest of everything the backend is told, each part length-prefixed: an answer is
    /// reused only for the very question it answered (a cookie's answer is not taken for
    /// another origin's cross-site POST), and no credential is kept.
    fn key(&self) -> Key {
        let mut digest = Sha256::new();
        let mut part = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };
        part(self.method.as_bytes());
        part(self.channels_joined().as_bytes());
        for value in [
            &self.forward.cookie,
            &self.forward.authorization,
            &self.forward.origin,
        ] {
            part(
                value
                    .as_ref()
                    .map_or(&b"\0absent"[..], HeaderValue::as_bytes),
            );
        }
        part(
            self.address()
                .map(|ip| ip.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
        digest.finalize().into()
    }

    fn address(&self) -> Option<IpAddr> {
        self.client.map(|client| client.ip)
    }
}

/// The backend, its client, the decisions kept and their counts.
#[derive(Debug)]
pub struct Authorizer {
    // Shared with the task that asks a question (`ask`).
    backend: Arc<Backend>,
    cache: Arc<Cache>,
    failures: Arc<SharedThrottle>,
    in_flight: InFlight<Decision>,
    keep: Duration,
    public: Vec<Pattern>,
    decisions: Family<[(&'static str, &'static str); 1], Counter>,
    cache_hits: Counter,
}

impl Authorizer {
    pub fn new(config: &AuthorizeConfig) -> anyhow::Result<Self> {
        Ok(Authorizer {
            backend: Arc::new(Backend::new(config.url.clone(), config.timeout)?),
            cache: Arc::default(),
            failures: Arc::new(SharedThrottle::new(WARNING_PERIOD)),
            in_flight: InFlight::default(),
            keep: config.cache,
            public: config.public.clone(),
            decisions: Family::default(),
            cache_hits: Counter::default(),
        })
    }

    /// Whether `--public` opens `channel` to anyone: then it is not asked about.
    pub fn is_public(&self, channel: &ChannelName) -> bool {
        self.public.iter().any(|pattern| pattern.matches(channel))
    }

    /// `sse_broadcast_authorize_decisions_total{outcome}`, `…_cache_hits_total` and
    /// `…_merged_total`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "authorize_decisions",
            "Requests --authorize-url decided, by outcome (allowed, denied: 401 or 403, error: no decision), cached answers included",
            self.decisions.clone(),
        );
        registry.register(
            "authorize_cache_hits",
            "Requests decided by an answer --authorize-cache kept",
            self.cache_hits.clone(),
        );
        registry.register(
            "authorize_merged",
            "Requests that waited for the answer to the same question already being asked of --authorize-url instead of asking it again",
            self.in_flight.merged(),
        );
    }

    /// The decision on `question`, kept or asked for (or being asked: then its answer is
    /// awaited); `None` when the backend gave none (a timeout, another status, down), which is
    /// never kept. Every request is counted by its outcome, merged ones included.
    async fn decide(&self, question: &Question<'_>) -> Option<Decision> {
        let key = question.key();
        if let Some(decision) = self.cache.get(&key) {
            self.cache_hits.inc();
            let outcome = self.count(&decision);
            // Fields for the log line, formatted only when it is written.
            let peer = question.client.map(tracing::field::display);
            let channels = tracing::field::display(Joined(question.channels));
            let method = question.method;
            tracing::debug!(peer, %channels, method, outcome, "authorized from the cache");
            return Some(decision);
        }
        match self.in_flight.answer(key, || self.ask(question, key)).await {
            Some(decision) => {
                self.count(&decision);
                Some(decision)
            }
            None => {
                self.decisions.get_or_create(&[("outcome", "error")]).inc();
                None
            }
        }
    }

    /// Asking the backend about `question`, its answer logged and kept: a future that owns what
    /// it needs, so that it runs on when the request that asked goes away (`inflight.rs`).
    fn ask(
        &self,
        question: &Question<'_>,
        key: Key,
    ) -> impl Future<Output = Option<Decision>> + Send + 'static {
        let (backend, cache, failures) = (
            self.backend.clone(),
            self.cache.clone(),
            self.failures.clone(),
        );
        let keep = self.keep;
        let (forward, channels) = (question.forward.clone(), question.channels.to_vec());
        let (method, client) = (question.method, question.client);
        async move {
            let question = Question {
                forward: &forward,
                channels: &channels,
                method,
                client,
            };
            let peer = client.map(tracing::field::display);
            let channels = tracing::field::display(Joined(&channels));
            let asked = Instant::now();
            match backend.ask(&question).await {
                Ok(decision) => {
                    let outcome = outcome(&decision);
                    let user = match &decision {
                        Decision::Allowed(allowance) => allowance.user.as_deref(),
                        Decision::Refused(_) => None,
                    };
                    tracing::info!(
                        peer,
                        %channels,
                        method,
                        outcome,
                        user,
                        "authorization backend decided"
                    );
                    if !keep.is_zero() {
                        let mut keep = keep;
                        if let Decision::Allowed(allowance) = &decision
                            && allowance.expires
                        {
                            keep = keep.min(allowance.grant.remaining());
                        }
                        cache.put(key, decision.clone(), asked + keep);
                    }
                    Some(decision)
                }
                Err(failure) => {
                    if let Some(failures) = failures.note() {
                        tracing::warn!(
                            peer,
                            %channels,
                            method,
                            failures,
                            "refused: the authorization backend (--authorize-url) gave no decision: {failure}"
                        );
                    }
                    None
                }
            }
        }
    }

    /// Whether a stream of `channels` may open, asking about `question.channels` (those that
    /// `--public` leaves closed): the channels it may read, narrowed as the backend's body says
    /// (a channel it does not allow is left out; none left: 403), and the backend's grant: the
    /// `user` it names (the reader `--presence` announces, as a token's `sub`) and the end its
    /// `expires_in` sets (far away without one, as a token's may be). Always returned: a grant
    /// kept only for `expires_in` lost the user of an answer without one.
    pub async fn may_read(
        &self,
        question: &Question<'_>,
        mut channels: Vec<ChannelName>,
    ) -> Result<(Vec<ChannelName>, Option<Grant>), Denied> {
        let allowance = self.allowance(question).await?;
        let asked = question.channels;
        channels.retain(|name| !asked.contains(name) || allowance.grant.may_subscribe(name));
        if channels.is_empty() {
            let name = &asked[0];
            return Err(Denied::Refused(insufficient_scope(&format!(
                "the application does not allow reading channel {name}"
            ))));
        }
        Ok((channels, Some(allowance.grant.clone())))
    }

    /// Whether a POST may publish to the channel of `question`.
    pub async fn may_publish(&self, question: &Question<'_>) -> Result<(), Denied> {
        let allowance = self.allowance(question).await?;
        match question
            .channels
            .iter()
            .find(|name| !allowance.grant.may_publish(name))
        {
            Some(name) => Err(Denied::Refused(insufficient_scope(&format!(
                "the application does not allow publishing to channel {name}"
            )))),
            None => Ok(()),
        }
    }

    async fn allowance(
        &self,
        question: &Question<'_>,
    ) -> Result<std::sync::Arc<Allowance>, Denied> {
        match self.decide(question).await {
            Some(Decision::Allowed(allowance)) => Ok(allowance),
            Some(Decision::Refused(refusal)) => Err(Denied::Refused(refusal.refused())),
            None => Err(Denied::Unanswered),
        }
    }

    /// Counts a decision; its outcome for the log.
    fn count(&self, decision: &Decision) -> &'static str {
        let outcome = outcome(decision);
        let label = if outcome == "allowed" {
            "allowed"
        } else {
            "denied"
        };
        self.decisions.get_or_create(&[("outcome", label)]).inc();
        outcome
    }
}

/// A decision's outcome for the log: "allowed", "denied 401" or "denied 403".
fn outcome(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allowed(_) => "allowed",
        Decision::Refused(refusal) if refusal.status.as_u16() == 401 => "denied 401",
        Decision::Refused(_) => "denied 403",
    }
}
