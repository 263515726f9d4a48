//! A refusal of access (DESIGN.md §10): 401 with RFC 6750's `WWW-Authenticate` challenge for a
//! missing or invalid token, 403 naming what a valid token does not allow, and 403 without a
//! challenge for what is switched off. The body is one line saying why; it never holds a token.

use warp::http::{HeaderValue, StatusCode, header};

use crate::refused::Refused;

const REALM: &str = "Bearer realm=\"sse-broadcast\"";
pub const INVALID_TOKEN: &str = "Bearer realm=\"sse-broadcast\", error=\"invalid_token\"";
const INSUFFICIENT_SCOPE: &str = "Bearer realm=\"sse-broadcast\", error=\"insufficient_scope\"";

/// 401 asking for a bearer token, with no error code: none was sent where one counts.
pub fn unauthorized(why: &str) -> Refused {
    challenge(StatusCode::UNAUTHORIZED, REALM, why)
}

/// 401 `invalid_token`: none, malformed, forged, expired or not yet valid.
pub fn invalid_token(why: &str) -> Refused {
    challenge(StatusCode::UNAUTHORIZED, INVALID_TOKEN, why)
}

/// 403 `insufficient_scope`: a valid token without the right asked for.
pub fn insufficient_scope(why: &str) -> Refused {
    challenge(StatusCode::FORBIDDEN, INSUFFICIENT_SCOPE, why)
}

/// 403 without a challenge: what a request asks for is switched off.
pub fn forbidden(why: &str) -> Refused {
    Refused::new(StatusCode::FORBIDDEN, why.to_owned())
}

fn challenge(status: StatusCode, authenticate: &'static str, why: &str) -> Refused {
    Refused::new(status, why.to_owned()).with(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(authenticate),
    )
}

/// Why a request may not go on: a refusal to answer as it is, or no decision at all (the
/// authorization backend did not answer), which a route answers with the refusal a client
/// survives (a stream: the ending an EventSource comes back from; a POST: 503, Retry-After).
#[derive(Debug)]
pub enum Denied {
    Refused(Refused),
    Unanswered,
}

impl From<Refused> for Denied {
    fn from(refused: Refused) -> Self {
        Denied::Refused(refused)
    }
}
