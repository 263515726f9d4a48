//! The HTTP side: one reqwest client (rustls on ring, HTTP/2 by ALPN, the usual proxy
//! variables, redirects followed) and what each answer to a stream request means: a stream to
//! read, the end (`204`), a failure to report with its exit status, or one to retry.

use std::error::Error as _;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Response, StatusCode, Url};

use super::config::{Auth, ListenConfig};
use crate::errors::describe;

/// Exit statuses, as DESIGN §15 lists them.
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_DENIED: u8 = 3;
pub const EXIT_GONE: u8 = 4;

/// A connection attempt that does not answer in this long counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Probes on an idle stream, so a peer that vanished without a word is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// What a stream request came to.
#[derive(Debug)]
pub enum Opened {
    /// A `200` of `text/event-stream`: read it.
    Stream(Response),
    /// `204 No Content`: the server says stop.
    Stop,
}

/// Why a stream request did not open a stream.
#[derive(Debug)]
pub enum Failure {
    /// Retrying would not help: exit with `code` after saying `message`.
    Fatal { code: u8, message: String },
    /// Wait and try again.
    Retry(String),
}

pub fn client(config: &ListenConfig) -> anyhow::Result<Client> {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_keepalive(TCP_KEEPALIVE)
        .user_agent(concat!("sse-broadcast/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.cacert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read --cacert {}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certificates| !certificates.is_empty())
            .with_context(|| format!("--cacert {}: no PEM certificate in it", path.display()))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    } else {
        for certificate in system_roots() {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().context("cannot set up the HTTP client")
}

/// The system's trusted roots (as reqwest's `rustls-tls-native-roots` would load them). A
/// certificate the store holds but rustls cannot read is left out, as reqwest leaves it out; a
/// store with none at all leaves every https:// URL unverifiable, which is said once here and
/// again, naming the URL, when a certificate fails.
fn system_roots() -> Vec<reqwest::Certificate> {
    let loaded = rustls_native_certs::load_native_certs();
    let roots: Vec<_> = loaded
        .certs
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect();
    if roots.is_empty() {
        tracing::warn!(
            errors = loaded.errors.len(),
            "no trusted root certificate found in the system's store: https:// needs --cacert"
        );
    }
    roots
}

/// The URL as it may be shown: without a user name or password.
pub fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// Asks for the stream, resuming after `last_id` when there is one.
pub async fn open(
    client: &Client,
    config: &ListenConfig,
    last_id: &str,
) -> Result<Opened, Failure> {
    let url = shown(&config.url);
    let mut request = client
        .get(config.url.clone())
        .header(ACCEPT, "text/event-stream")
        .header(CACHE_CONTROL, "no-cache");
    for header in &config.headers {
        request = request.header(header.name.clone(), header.value.clone());
    }
    if !last_id.is_empty() {
        // The parser never keeps a CR, LF or NUL in an id, and --since and a cursor file are
        // checked the same way, so the value is always a valid header.
        match HeaderValue::from_str(last_id) {
            Ok(value) => request = request.header("Last-Event-ID", value),
            Err(_) => tracing::warn!("the last event id is not a valid header value; not sent"),
        }
    }
    request = match &config.auth {
        Some(Auth::Bearer(token)) => request.bearer_auth(token),
        Some(Auth::Basic { user, password }) => request.basic_auth(user, Some(password)),
        None => request,
    };
    let response = request.send().await.map_err(|err| failed(&url, &err))?;
    let status = response.status();
    let fatal = |code, why: &str| Failure::Fatal {
        code,
        message: format!("{url}: {}{why}", status_text(status)),
    };
    match status {
        StatusCode::OK => {}
        StatusCode::NO_CONTENT => return Ok(Opened::Stop),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(fatal(EXIT_DENIED, " (check --token, --user or -H)"));
        }
        StatusCode::NOT_FOUND | StatusCode::GONE => return Err(fatal(EXIT_GONE, "")),
        _ => return Err(Failure::Retry(format!("{url}: {}", status_text(status)))),
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok());
    if content_type.as_ref().map(mime::Mime::essence_str) != Some("text/event-stream") {
        let shown_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map_or("no Content-Type".into(), |value| {
                format!("Content-Type {}", String::from_utf8_lossy(value.as_bytes()))
            });
        return Err(Failure::Fatal {
            code: EXIT_ERROR,
            message: format!("{url}: not an event stream ({shown_type})"),
        });
    }
    Ok(Opened::Stream(response))
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A request that got no answer: a certificate that does not verify (or a redirect loop) is
/// the configuration's fault and fatal; anything else may pass, so it is retried.
fn failed(url: &str, err: &reqwest::Error) -> Failure {
    if let Some(tls) = rustls_error(err)
        && matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        )
    {
        return Failure::Fatal {
            code: EXIT_ERROR,
            message: format!("{url}: the server's certificate does not verify: {tls} (--cacert)"),
        };
    }
    if err.is_redirect() {
        return Failure::Fatal {
            code: EXIT_ERROR,
            message: format!("{url}: too many redirects"),
        };
    }
    Failure::Retry(format!("{url}: {}", cause(err)))
}

/// The rustls error under a request's error, if a TLS handshake failed. An `io::Error` hides
/// the error it wraps from `source()`, so each one is opened with `get_ref`.
fn rustls_error(err: &reqwest::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match err.downcast_ref::<std::io::Error>() {
            // An io::Error may wrap another: each is opened in turn.
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// The innermost cause of a request's error, which says what happened ("Connection refused").
fn cause(err: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = err;
    while let Some(source) = last.source() {
        last = source;
    }
    describe(last)
}
