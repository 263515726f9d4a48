//! The one way a refusal is answered, whichever layer refuses: a status, one line saying why
//! (the body, `text/plain`, ending in a newline), and at most one header that tells the client
//! what to do next (`WWW-Authenticate`, `Retry-After`, `Connection: close`). The line never
//! holds a secret: callers say what was wrong, not what was sent.

use std::borrow::Cow;

use warp::http::{HeaderName, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

/// A refusal, built where the reason is known and answered as it is (`Reply`).
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    why: Cow<'static, str>,
    header: Option<(HeaderName, HeaderValue)>,
}

impl Refused {
    pub fn new(status: StatusCode, why: impl Into<Cow<'static, str>>) -> Self {
        Refused {
            status,
            why: why.into(),
            header: None,
        }
    }

    /// The same refusal with `name: value` among its headers.
    pub fn with(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.header = Some((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The line saying why, for unit tests.
    #[cfg(test)]
    pub fn why(&self) -> &str {
        &self.why
    }
}

impl Reply for Refused {
    fn into_response(self) -> Response {
        let mut response =
            warp::reply::with_status(format!("{}\n", self.why), self.status).into_response();
        if let Some((name, value)) = self.header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
