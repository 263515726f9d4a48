//! `sse-broadcast listen`'s flags (DESIGN §15), one help heading per group, and their checks;
//! `into_config` hands the settled `ListenConfig` to `listen/`.

use std::path::PathBuf;

use clap::Args;
use clap::error::ErrorKind;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

use super::logging::LoggingFlags;
use super::values::secret;
use crate::listen::{Auth, ExecFailure, Header, ListenConfig, OutputMode};

/// The subcommand's flags; its help text is on `Subcommand::Listen` (`cli/mod.rs`).
#[derive(Debug, Args)]
#[command(after_help = LISTEN_EXAMPLES)]
pub struct ListenFlags {
    /// The stream: any http(s) SSE endpoint (this server's: /events, /events/NAME, /events/a,b).
    #[arg(value_name = "URL", value_parser = parse_url)]
    url: Url,

    /// data: each event's data then a newline (a multi-line data prints its lines); json: one
    /// object a line, {"id","event","data","retry","channel"} with only the keys that apply, as
    /// `sse-broadcast -f json` reads it; raw: each event as SSE wire text.
    #[arg(
        short,
        long,
        value_enum,
        value_name = "MODE",
        default_value = "data",
        help_heading = "Output"
    )]
    output: OutputMode,

    /// End each event with NUL instead of a newline: data with newlines stays one record
    /// (`xargs -0`, `read -d ''`).
    #[arg(short = '0', long, help_heading = "Output")]
    null: bool,

    /// Only events of this type (repeatable; `message` is an unnamed one).
    #[arg(long, value_name = "NAME", help_heading = "Output")]
    event: Vec<String>,

    /// Exit 0 after N events (counted after --event filtering).
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "Output")]
    count: Option<u64>,

    /// Run CMD with `sh -c` for each event, one at a time, in order, instead of printing it: the
    /// data and a newline on its stdin; SSE_ID, SSE_EVENT (`message` when unnamed), SSE_CHANNEL
    /// (the event's own channel on a stream of several) and SSE_URL in its environment. Reading
    /// waits while it runs: a slow command is a slow client, which the server may drop; the
    /// reconnect then replays what it missed.
    #[arg(long, value_name = "CMD", help_heading = "Output")]
    exec: Option<String>,

    /// A command that exits non-zero: warn and go on, or exit with its status.
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        default_value = "continue",
        requires = "exec",
        help_heading = "Output"
    )]
    exec_failure: ExecFailure,

    /// The first request's Last-Event-ID (earliest: every event the server keeps).
    #[arg(long, value_name = "ID", value_parser = parse_id, help_heading = "Resume")]
    since: Option<String>,

    /// Start from the id in FILE when it exists (it wins over --since); after each event is
    /// handled (printed and flushed, or its command finished), write its id there atomically. A
    /// killed listener restarted with the same file skips nothing; a stopped one repeats nothing.
    #[arg(long, value_name = "FILE", help_heading = "Resume")]
    cursor_file: Option<PathBuf>,

    /// Exit when the stream ends instead of reconnecting.
    #[arg(long, help_heading = "Resume")]
    no_reconnect: bool,

    /// Give up (exit 1) when N retries in a row fail (N + 1 attempts). Default: never.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "no_reconnect",
        help_heading = "Resume"
    )]
    max_retries: Option<u32>,

    /// Extra request header (repeatable). Its value is never shown.
    #[arg(short = 'H', long, value_name = "NAME: VALUE", value_parser = secret(parse_header),
          help_heading = "Access")]
    header: Vec<Header>,

    /// Send Authorization: Bearer TOKEN. Prefer the environment variable: the command line is
    /// visible to every user in `ps`.
    #[arg(long, value_name = "TOKEN", value_parser = secret(parse_token),
          env = "SSE_BROADCAST_LISTEN_TOKEN", hide_env_values = true, allow_hyphen_values = true,
          help_heading = "Access")]
    token: Option<String>,

    /// Send HTTP Basic credentials. Prefer the environment variable, as for --token.
    #[arg(long, value_name = "USER:PASSWORD", value_parser = secret(parse_user),
          env = "SSE_BROADCAST_LISTEN_USER", hide_env_values = true, allow_hyphen_values = true,
          conflicts_with = "token", help_heading = "Access")]
    user: Option<(String, String)>,

    /// Trust the CA certificates in this PEM file instead of the system's (HTTP/2 by ALPN over
    /// TLS either way).
    #[arg(long, value_name = "FILE", help_heading = "Access")]
    cacert: Option<PathBuf>,

    #[command(flatten)]
    logging: LoggingFlags,
}

const LISTEN_EXAMPLES: &str = "\
Examples:
  sse-broadcast listen http://127.0.0.1:8080/events            print each event's data
  sse-broadcast listen -o json --cursor-file pos URL           resume where it stopped
  sse-broadcast listen --exec 'notify-send \"$SSE_EVENT\"' URL    a command per event
  sse-broadcast listen -o json https://a/events/build | sse-broadcast -f json --channel build
                                                              relay a channel to another hub";

impl ListenFlags {
    /// The settled config, or a usage error (kind and message) for what clap cannot declare.
    pub fn into_config(self) -> Result<ListenConfig, (ErrorKind, String)> {
        if self.exec.is_some() && (self.output != OutputMode::Data || self.null) {
            return Err((
                ErrorKind::ArgumentConflict,
                "--exec hands each event to the command; --output and --null shape what is printed, which --exec replaces".into(),
            ));
        }
        let auth = match (self.token, self.user) {
            (Some(token), _) => Some(Auth::Bearer(token)),
            (None, Some((user, password))) => Some(Auth::Basic { user, password }),
            (None, None) => None,
        };
        Ok(ListenConfig {
            url: self.url,
            output: self.output,
            null: self.null,
            events: self.event,
            count: self.count,
            exec: self.exec,
            exec_failure: self.exec_failure,
            since: self.since,
            cursor_file: self.cursor_file,
            reconnect: !self.no_reconnect,
            max_retries: self.max_retries,
            headers: self.header,
            auth,
            cacert: self.cacert,
            log: self.logging.config(),
        })
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|err| format!("not a URL: {err}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("{other}: only http and https URLs are read")),
    }
}

/// An id as sent in Last-Event-ID: what an `id:` line can hold, and a valid header value.
fn parse_id(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['\r', '\n', '\0']) {
        return Err("an id is not empty and holds no line break or NUL".into());
    }
    HeaderValue::from_str(text).map_err(|_| "not a valid header value".to_string())?;
    Ok(text.to_owned())
}

fn parse_header(text: &str) -> Result<Header, String> {
    let (name, value) = text.split_once(':').ok_or("expected 'NAME: VALUE'")?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| "the header name is not a valid HTTP token".to_string())?;
    let mut value = HeaderValue::from_str(value.trim())
        .map_err(|_| "the header value holds a character HTTP does not allow".to_string())?;
    value.set_sensitive(true);
    Ok(Header { name, value })
}

fn parse_token(text: &str) -> Result<String, String> {
    if text.trim().is_empty() || HeaderValue::from_str(text).is_err() {
        return Err("a token is not empty and holds no line break or control character".into());
    }
    Ok(text.to_owned())
}

fn parse_user(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok((user.to_owned(), password.to_owned())),
        _ => Err("expected USER:PASSWORD with a user name".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        assert!(parse_url("https://h/events").is_ok());
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("h/events").is_err());
        assert!(parse_id("a:1,b:2").is_ok());
        assert!(parse_id("a\nb").is_err());
        assert!(parse_id("").is_err());
        let header = parse_header("X-Key:  v a l ").unwrap();
        assert_eq!(
            (header.name.as_str(), header.value.as_bytes()),
            ("x-key", &b"v a l"[..])
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: v").is_err());
        assert_eq!(parse_user("me:p:w").unwrap(), ("me".into(), "p:w".into()));
        assert!(parse_user(":pw").is_err());
        assert!(parse_token(" ").is_err());
    }
}
