//! The one HTTP client of `--authorize-url`, reused for every question (its connections to the
//! backend are pooled). A question is a GET carrying the request's `Cookie`, `Authorization`
//! and `Origin` as they came, the channels (`X-SSE-Channels`, comma-joined), the method
//! (`X-SSE-Method`) and the client's address (`X-Forwarded-For`, as `forwarded.rs` found it).
//! The whole exchange, the answer's body included, must end within `--authorize-timeout`.
//! Redirects are not followed (a login page's 302 is no decision) and no proxy from the
//! environment is used: the request carries the user's cookie, and goes only where it is told.

use std::time::Duration;

use bytes::BytesMut;
use reqwest::{Client, Url, redirect};
use warp::http::header;

use super::Question;
use super::decision::{Decision, Failure, decide};
use crate::errors::describe;

/// The most of an answer's body read: a JSON object of a few patterns, or a refusal's line.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub struct Backend {
    client: Client,
    url: Url,
    timeout: Duration,
}

impl Backend {
    pub fn new(url: Url, timeout: Duration) -> anyhow::Result<Self> {
        let mut builder = Client::builder()
            .use_rustls_tls()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("sse-broadcast/", env!("CARGO_PKG_VERSION")));
        if url.scheme() == "https" {
            for der in rustls_native_certs::load_native_certs().certs {
                if let Ok(root) = reqwest::Certificate::from_der(&der) {
                    builder = builder.add_root_certificate(root);
                }
            }
        }
        let client = builder
            .build()
            .map_err(|err| anyhow::anyhow!("cannot set up the client of --authorize-url: {err}"))?;
        Ok(Backend {
            client,
            url,
            timeout,
        })
    }

    /// The backend's decision on `question`, or why it gave none.
    pub async fn ask(&self, question: &Question<'_>) -> Result<Decision, Failure> {
        let mut request = self
            .client
            .get(self.url.clone())
            .header("x-sse-channels", question.channels_joined())
            .header("x-sse-method", question.method);
        let forwarded = [
            (header::COOKIE, &question.forward.cookie),
            (header::AUTHORIZATION, &question.forward.authorization),
            (header::ORIGIN, &question.forward.origin),
        ];
        for (name, value) in forwarded {
            if let Some(value) = value {
                request = request.header(name, value.clone());
            }
        }
        if let Some(client) = question.client {
            request = request.header("x-forwarded-for", client.ip.to_string());
        }
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status();
            let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
            let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
            let mut body = BytesMut::new();
            while body.len() < MAX_BODY
                && let Some(chunk) = response.chunk().await?
            {
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, content_type, challenge, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(Failure::TimedOut(self.timeout)),
            Ok(Err(err)) if err.is_timeout() => Err(Failure::TimedOut(self.timeout)),
            Ok(Err(err)) => Err(Failure::Unreachable(cause(&err.without_url()))),
            Ok(Ok((status, content_type, challenge, body))) => {
                decide(status, content_type.as_ref(), challenge, &body)
            }
        }
    }
}

/// The error and its causes in one line ("error sending request: … Connection refused").
fn cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = describe(err);
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&describe(inner));
        source = inner.source();
    }
    text
}
