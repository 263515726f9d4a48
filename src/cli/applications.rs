//! Application flags: who is here (`--presence`), commands run when a channel gets its first
//! reader or loses its last, and the application's own word on who reads and publishes
//! (`--authorize-url`).

use std::time::Duration;

use clap::Args;
use clap::builder::NonEmptyStringValueParser;
use reqwest::Url;

use super::values::{DurationRange, HOUR, MILLISECOND, Switch, secret};
use crate::access::{AuthorizeConfig, Pattern};
use crate::occupancy::Hooks;

/// Past a minute a backend that has not answered is down, whatever it says later.
const AUTHORIZE_TIMEOUT: DurationRange = DurationRange::new(MILLISECOND, Duration::from_secs(60));
const AUTHORIZE_CACHE: DurationRange = DurationRange::new(MILLISECOND, HOUR).or_off();

#[derive(Debug, Args)]
#[command(next_help_heading = "Applications")]
pub struct ApplicationFlags {
    /// Channels announce who joins and leaves: `event: join` / `event: leave` in the channel
    /// itself, data {"user": <the token's sub, or null>, "streams": <the channel's streams
    /// now>}, once per user (its first stream opens, its last closes; each stream without a
    /// token is a reader of its own), never kept in history, without id. GET /presence/NAME
    /// gives {"channel", "streams", "anonymous", "users": [{"user", "streams"}]} (access as the
    /// channel's stream; a --public channel shows names only to a token that may read it).
    /// With --redis, counted over every instance; an instance that dies stops counting when
    /// its 15 s lease ends, and the others announce its users' leaves then.
    #[arg(long, env = "SSE_BROADCAST_PRESENCE", value_parser = Switch)]
    pub presence: bool,

    /// Run CMD (with sh -c, SSE_CHANNEL naming the channel) when a channel gets its first
    /// reader: a producer that runs only while someone watches. With --redis, readers are
    /// counted over every instance and one instance runs it. For one channel one hook runs at a
    /// time; a change meanwhile runs the other hook when it ends. Its environment has no
    /// SSE_BROADCAST_* variable.
    #[arg(long, value_name = "CMD", value_parser = NonEmptyStringValueParser::new(),
          env = "SSE_BROADCAST_ON_OCCUPIED")]
    pub on_occupied: Option<String>,

    /// Run CMD (as --on-occupied) when a channel loses its last reader (with --redis: its last
    /// reader over every instance; the readers of an instance that died count until its 15 s
    /// lease ends).
    #[arg(long, value_name = "CMD", value_parser = NonEmptyStringValueParser::new(),
          env = "SSE_BROADCAST_ON_VACATED")]
    pub on_vacated: Option<String>,

    /// Before a stream opens (and a POST, unless --publish-token or a token grants it), GET URL
    /// with the request's Cookie, Authorization and Origin, X-SSE-Channels (comma-joined),
    /// X-SSE-Method and X-Forwarded-For (the client). 2xx allows; a JSON body {"user",
    /// "subscribe", "publish", "expires_in"} narrows it as a token's claims would; 401 and 403
    /// are passed on to the client; a timeout, another status or no answer refuses with the
    /// refusal an EventSource comes back from (a POST: 503 with Retry-After). Asked only for
    /// what a token or --public does not grant.
    #[arg(long, value_name = "URL", value_parser = secret(parse_authorize_url),
          env = "SSE_BROADCAST_AUTHORIZE_URL")]
    pub authorize_url: Option<Url>,

    /// How long --authorize-url has to answer (1ms to 1m).
    #[arg(long, value_name = "DURATION", default_value = "2s",
          value_parser = AUTHORIZE_TIMEOUT.parser(), env = "SSE_BROADCAST_AUTHORIZE_TIMEOUT")]
    pub authorize_timeout: Duration,

    /// How long an answer of --authorize-url is reused for the same credentials, channels and
    /// method, counted from when it was given (never beyond its expires_in; timeouts and errors
    /// are not kept; up to 1h, 0 = ask every time).
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = AUTHORIZE_CACHE.parser(), env = "SSE_BROADCAST_AUTHORIZE_CACHE")]
    pub authorize_cache: Duration,
}

/// `--authorize-url`: an http:// or https:// URL. Not repeated in the error: it may hold a
/// password.
fn parse_authorize_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|err| format!("not a URL: {err}"))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(url),
        "http" | "https" => Err("the URL names no host".into()),
        other => Err(format!("{other}: the URL must be http:// or https://")),
    }
}

impl ApplicationFlags {
    pub fn hooks(&self) -> Hooks {
        Hooks {
            occupied: self.on_occupied.clone(),
            vacated: self.on_vacated.clone(),
        }
    }

    /// `--authorize-url`'s setup; `public` is `--public`, whose channels it is not asked about.
    pub fn authorize(&self, public: &[Pattern]) -> Option<AuthorizeConfig> {
        self.authorize_url.clone().map(|url| AuthorizeConfig {
            url,
            timeout: self.authorize_timeout,
            cache: self.authorize_cache,
            public: public.to_vec(),
        })
    }
}
