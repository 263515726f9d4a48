//! What an answer of the authorization backend means (DESIGN.md §17): a 2xx allows, and its JSON
//! body `{"user", "subscribe", "publish", "expires_in"}` narrows the allowance as a token's
//! claims would (the same `Grant`, the same patterns); 401 and 403 are refusals passed on to the
//! client with the backend's body and challenge; anything else is no decision at all
//! (`Failure`), answered with the refusal a client survives and never kept.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use warp::http::{HeaderValue, StatusCode, header};

use crate::access::grant::Grant;
use crate::access::pattern::Pattern;
use crate::refused::Refused;

/// The most of a refusal's body passed on to the client: a line or a short page, not a log.
const MAX_REFUSAL_BODY: usize = 1024;
/// Said when the backend refused with an empty body.
const REFUSED: &str = "refused by the application (--authorize-url)";
/// The challenge of a 401 whose backend sent none (RFC 9110 requires one on a 401).
const REALM: &str = "Bearer realm=\"sse-broadcast\"";
/// The longest `expires_in` taken: a bigger one means "no end" as well.
const MAX_EXPIRES_IN: f64 = 1e9;

/// A decision of the backend, as kept and reused.
#[derive(Debug, Clone)]
pub enum Decision {
    Allowed(Arc<Allowance>),
    Refused(Arc<Refusal>),
}

/// What a 2xx allowed: the whole question unless its body narrowed it.
#[derive(Debug)]
pub struct Allowance {
    /// The body's `user`, for the log and for presence: whom the application says this is.
    pub user: Option<String>,
    /// `subscribe` and `publish` as the body gave them (`*` for one it left out: the asked
    /// channels, all of them), until `expires_in` (far away without one).
    pub grant: Grant,
    /// Whether `expires_in` was given: only then does a stream end at `grant.expires`.
    pub expires: bool,
}

/// A 401 or 403, as the client will get it.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    body: String,
    challenge: Option<HeaderValue>,
}

impl Refusal {
    /// The refusal as the client gets it: the backend's status, body and `WWW-Authenticate`.
    pub fn refused(&self) -> Refused {
        let why = if self.body.is_empty() {
            REFUSED.to_owned()
        } else {
            self.body.clone()
        };
        let refused = Refused::new(self.status, why);
        match (&self.challenge, self.status) {
            (Some(challenge), _) => refused.with(header::WWW_AUTHENTICATE, challenge.clone()),
            (None, StatusCode::UNAUTHORIZED) => {
                refused.with(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM))
            }
            (None, _) => refused,
        }
    }
}

/// Why the backend gave no decision: for the log line and the metrics, never a credential.
#[derive(Debug)]
pub enum Failure {
    TimedOut(Duration),
    /// Not reached or the exchange broke: the error as reqwest says it, without the URL.
    Unreachable(String),
    /// A status that is neither 2xx nor 401/403 (a 3xx is not followed).
    Status(StatusCode),
    /// A 2xx whose JSON body is not the object it should be.
    BadBody(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TimedOut(after) => write!(
                f,
                "no answer within {} (--authorize-timeout)",
                humantime::format_duration(*after)
            ),
            Failure::Unreachable(why) => write!(f, "not reached: {why}"),
            Failure::Status(status) => write!(f, "answered {status}"),
            Failure::BadBody(why) => write!(f, "a 2xx body that is not the JSON asked for: {why}"),
        }
    }
}

/// The 2xx body that narrows, every field optional.
#[derive(Deserialize)]
struct Narrowing {
    #[serde(default)]
    user: Option<serde_json::Value>,
    subscribe: Option<Vec<Pattern>>,
    publish: Option<Vec<Pattern>>,
    expires_in: Option<f64>,
}

/// The decision an answer holds. A 2xx body counts when its `Content-Type` is JSON; any other
/// body (an `OK`, a page) allows what was asked.
pub fn decide(
    status: StatusCode,
    content_type: Option<&HeaderValue>,
    challenge: Option<HeaderValue>,
    body: &[u8],
) -> Result<Decision, Failure> {
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_REFUSAL_BODY)]);
        return Ok(Decision::Refused(Arc::new(Refusal {
            status,
            body: text.trim().to_owned(),
            challenge,
        })));
    }
    if !status.is_success() {
        return Err(Failure::Status(status));
    }
    let json = content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|media| media.subtype() == mime::JSON || media.suffix() == Some(mime::JSON));
    let narrowing = if json && !body.trim_ascii().is_empty() {
        serde_json::from_slice::<Narrowing>(body)
            .map_err(|err| Failure::BadBody(err.to_string()))?
    } else {
        Narrowing {
            user: None,
            subscribe: None,
            publish: None,
            expires_in: None,
        }
    };
    allowance(narrowing).map(|allowance| Decision::Allowed(Arc::new(allowance)))
}

fn allowance(narrowing: Narrowing) -> Result<Allowance, Failure> {
    let user = match narrowing.user {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(user)) => Some(user),
        Some(serde_json::Value::Number(user)) => Some(user.to_string()),
        Some(_) => return Err(Failure::BadBody("`user` is not a string".into())),
    };
    let expires_in = match narrowing.expires_in {
        Some(seconds) if seconds.is_nan() || seconds < 0.0 => {
            return Err(Failure::BadBody(
                "`expires_in` is not a number of seconds, 0 or more".into(),
            ));
        }
        Some(seconds) if seconds < MAX_EXPIRES_IN => Some(Duration::from_secs_f64(seconds)),
        _ => None,
    };
    let everything = || vec![Pattern::Prefix(String::new())];
    let named = user.as_deref().map(Box::from);
    Ok(Allowance {
        user,
        grant: Grant {
            // Without an end: as far as a token's may reach (`token.rs`).
            expires: expires_in.map_or(
                UNIX_EPOCH + Duration::from_secs(1_000_000_000_000),
                |after| SystemTime::now() + after,
            ),
            subscribe: narrowing.subscribe.unwrap_or_else(everything),
            publish: narrowing.publish.unwrap_or_else(everything),
            user: named,
        },
        expires: expires_in.is_some(),
    })
}

#[cfg(test)]
impl Decision {
    /// Any decision, for the cache's tests.
    pub fn unanswerable_for_tests() -> Self {
        Decision::Refused(Arc::new(Refusal {
            status: StatusCode::FORBIDDEN,
            body: String::new(),
            challenge: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelName;

    const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

    fn channel(name: &str) -> ChannelName {
        name.parse().unwrap()
    }

    fn allowed(decision: Result<Decision, Failure>) -> Arc<Allowance> {
        match decision {
            Ok(Decision::Allowed(allowance)) => allowance,
            other => panic!("not allowed: {other:?}"),
        }
    }

    #[test]
    fn a_2xx_allows_and_its_json_body_narrows() {
        let plain = allowed(decide(StatusCode::NO_CONTENT, None, None, b""));
        assert!(
            plain.grant.may_subscribe(&channel("any")) && plain.grant.may_publish(&channel("x"))
        );
        assert!(!plain.expires && plain.user.is_none());
        // Not JSON: the body says nothing.
        let text = HeaderValue::from_static("text/plain");
        assert!(
            allowed(decide(StatusCode::OK, Some(&text), None, b"{oops"))
                .grant
                .may_subscribe(&channel("a"))
        );
        let body = br#"{"user": "ann", "subscribe": ["team.*"], "expires_in": 30}"#;
        let narrowed = allowed(decide(StatusCode::OK, Some(&JSON), None, body));
        assert_eq!(narrowed.user.as_deref(), Some("ann"));
        assert!(narrowed.grant.may_subscribe(&channel("team.a")));
        assert!(!narrowed.grant.may_subscribe(&channel("other")));
        assert!(
            narrowed.grant.may_publish(&channel("other")),
            "publish was left out"
        );
        assert!(narrowed.expires);
        assert!(
            (Duration::from_secs(28)..=Duration::from_secs(30))
                .contains(&narrowed.grant.remaining())
        );
        let user_id = allowed(decide(
            StatusCode::OK,
            Some(&JSON),
            None,
            br#"{"user": 42, "publish": []}"#,
        ));
        assert_eq!(user_id.user.as_deref(), Some("42"));
        assert!(!user_id.grant.may_publish(&channel("a")));
    }

    #[test]
    fn refusals_pass_on_and_the_rest_is_no_decision() {
        let challenge = HeaderValue::from_static("Cookie realm=\"app\"");
        let Ok(Decision::Refused(refusal)) = decide(
            StatusCode::UNAUTHORIZED,
            None,
            Some(challenge),
            b"log in first\n",
        ) else {
            panic!("not refused")
        };
        assert_eq!(refusal.refused().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refusal.refused().why(), "log in first");
        let Ok(Decision::Refused(bare)) = decide(StatusCode::FORBIDDEN, None, None, b"") else {
            panic!("not refused")
        };
        assert_eq!(bare.refused().why(), REFUSED);
        for status in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::FOUND,
            StatusCode::NOT_FOUND,
        ] {
            assert!(matches!(
                decide(status, None, None, b""),
                Err(Failure::Status(_))
            ));
        }
        for bad in [
            &br#"{"expires_in": -1}"#[..],
            br#"{"subscribe": "a"}"#,
            br#"{"user": []}"#,
            b"[1]",
        ] {
            assert!(
                matches!(
                    decide(StatusCode::OK, Some(&JSON), None, bad),
                    Err(Failure::BadBody(_))
                ),
                "{bad:?}"
            );
        }
    }
}
