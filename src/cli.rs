//! The command line: `Cli` (flags, help, defaults, environment variables), its value parsers,
//! and `Cli` → `Config`, where what depends on the environment (is stdin a terminal?) is settled.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use clap_complete::Shell;

use crate::bus::RedisConfig;
use crate::channel::ChannelConfig;
use crate::channels::ChannelName;
use crate::event::EventName;
use crate::logging::{LogConfig, LogFormat};
use crate::routes::ServeConfig;
use crate::routes::auth::Credentials;
use crate::routes::publish::PublishConfig;
use crate::serving::tls::TlsFiles;
use crate::source::stdin::{Format, StdinSource};
use crate::source::ticker::Ticker;
use crate::template::Template;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

const AFTER_HELP: &str = "\
Exit status: 0 clean end (signal, --exit-on-eof), 1 runtime error (port in use, missing
static dir, ...), 2 usage error.

Examples:
  sse-broadcast                                   tick every 2s; open http://127.0.0.1:8080/
  tail -F app.log | sse-broadcast                 every new log line is an event
  sse-broadcast -i 1s -m 'tick {seq} at {time}'   a ticker with a template
  jq -c '{data: .msg, event: .kind}' in.jsonl | sse-broadcast -f json
  curl -N http://127.0.0.1:8080/events            watch the stream
  SSE_BROADCAST_AUTH=me:secret sse-broadcast --tls-cert cert.pem --tls-key key.pem -b 0.0.0.0
                                                  HTTPS + HTTP/2, behind a password
  SSE_BROADCAST_PUBLISH_TOKEN=$TOKEN sse-broadcast -i 1m
  curl -H \"Authorization: Bearer $TOKEN\" --data-binary @- http://127.0.0.1:8080/events/build
                                                  publish lines to channel build";

/// Broadcast Server-Sent Events from a ticker or from stdin lines to every connected client.
///
/// With neither --interval nor --stdin, stdin is read when it is not a terminal; otherwise the
/// ticker sends --message every 2s. The stream is at /events (named channels at /events/NAME),
/// a live viewer page at /, counters at /stats and /metrics (Prometheus); with --publish-token,
/// POST /events[/NAME] publishes. Every flag can also be set with SSE_BROADCAST_<FLAG>.
#[derive(Debug, Parser)]
#[command(name = "sse-broadcast", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Send --message every DURATION (500ms, 2s, 1m).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_interval, allow_hyphen_values = true,
          env = "SSE_BROADCAST_INTERVAL", help_heading = "Input")]
    pub interval: Option<Duration>,

    /// Ticker message. Fields: {time} (local, RFC 3339) {unix} {unix_ms} {seq} (this event's id)
    /// {consumers}; {{ and }} are literal braces.
    #[arg(
        short,
        long,
        value_name = "TEMPLATE",
        default_value = "hello, now is: {time}",
        env = "SSE_BROADCAST_MESSAGE",
        help_heading = "Input"
    )]
    pub message: Template,

    /// Ticker: stop after N events.
    #[arg(
        long,
        value_name = "N",
        env = "SSE_BROADCAST_COUNT",
        help_heading = "Input"
    )]
    pub count: Option<u64>,

    /// Read stdin lines as events (with --interval too: both merge).
    #[arg(long, env = "SSE_BROADCAST_STDIN", help_heading = "Input")]
    pub stdin: bool,

    /// Stdin line format. json: one object a line, {"data": string or any JSON value,
    /// "event"?: string, "id"?: string or number, "retry"?: milliseconds}.
    #[arg(
        short,
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "text",
        env = "SSE_BROADCAST_FORMAT",
        help_heading = "Input"
    )]
    pub format: Format,

    /// Event type on every event (default: none, which a browser dispatches as "message").
    #[arg(
        short,
        long,
        value_name = "NAME",
        env = "SSE_BROADCAST_EVENT",
        help_heading = "Input"
    )]
    pub event: Option<EventName>,

    /// The channel the ticker and stdin publish to (a JSON line's "channel" overrides it); its
    /// stream is <events-path>/NAME. Names: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or
    /// digit.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "default",
        env = "SSE_BROADCAST_CHANNEL",
        help_heading = "Input"
    )]
    pub channel: ChannelName,

    /// Port to listen on; 0 picks a free one (the `listening on` line names it).
    #[arg(
        short,
        long,
        default_value_t = 8080,
        env = "SSE_BROADCAST_PORT",
        help_heading = "Serving"
    )]
    pub port: u16,

    /// Address to listen on; 0.0.0.0 or :: to serve the network.
    #[arg(
        short,
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1",
        env = "SSE_BROADCAST_BIND",
        help_heading = "Serving"
    )]
    pub bind: IpAddr,

    /// Serve DIR at / instead of the built-in viewer page (index.html for /).
    #[arg(
        short = 'd',
        long,
        value_name = "DIR",
        env = "SSE_BROADCAST_STATIC_DIR",
        help_heading = "Serving"
    )]
    pub static_dir: Option<PathBuf>,

    /// Path of the event stream.
    #[arg(long, value_name = "PATH", default_value = "/events", value_parser = parse_events_path,
          env = "SSE_BROADCAST_EVENTS_PATH", help_heading = "Serving")]
    pub events_path: String,

    /// Allow this origin to read the stream from another site (repeatable; * for any).
    #[arg(long, value_name = "ORIGIN", value_parser = parse_origin, action = ArgAction::Append,
          env = "SSE_BROADCAST_CORS", value_delimiter = ',', help_heading = "Serving")]
    pub cors: Vec<String>,

    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain; needs --tls-key.
    /// SIGHUP re-reads both files (a renewal) without dropping open streams.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "SSE_BROADCAST_TLS_CERT",
        help_heading = "Serving"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "SSE_BROADCAST_TLS_KEY",
        help_heading = "Serving"
    )]
    pub tls_key: Option<PathBuf>,

    /// Require HTTP Basic credentials on every path. Prefer the environment variable
    /// SSE_BROADCAST_AUTH: the command line is visible to every user in `ps`.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "SSE_BROADCAST_AUTH",
        hide_env_values = true,
        help_heading = "Serving"
    )]
    pub auth: Option<Credentials>,
    /// Named channels alive at once (besides the default one); a request that would create
    /// another gets 503 with Retry-After. Idle channels that nobody reads make room.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        env = "SSE_BROADCAST_MAX_CHANNELS",
        help_heading = "Serving"
    )]
    pub max_channels: usize,

    /// Enable publishing with POST <events-path>[/CHANNEL] and `Authorization: Bearer TOKEN`
    /// (without it, POST gets 403). Prefer the environment variable: argv is visible in ps.
    #[arg(long, value_name = "TOKEN", value_parser = parse_token, hide_env_values = true,
          env = "SSE_BROADCAST_PUBLISH_TOKEN", help_heading = "Serving")]
    pub publish_token: Option<String>,

    /// Largest POST body; a larger one gets 413. Accepts 1MiB, 64KiB, 1000000.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size,
          env = "SSE_BROADCAST_MAX_BODY", help_heading = "Serving")]
    pub max_body: usize,

    /// Send a heartbeat comment when nothing was sent for DURATION, so proxies keep a quiet
    /// stream open; 0 disables.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration,
          env = "SSE_BROADCAST_KEEP_ALIVE", help_heading = "Stream")]
    pub keep_alive: Duration,

    /// Reconnection delay sent at the start of each stream (retry:), drawn per client from
    /// [DURATION, 1.5 × DURATION] so that a restart's reconnects don't all arrive at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval,
          env = "SSE_BROADCAST_RETRY", help_heading = "Stream")]
    pub retry: Option<Duration>,

    /// Redis shared by several instances, which then act as one broadcast: same events, same
    /// ids, replay on any of them (redis:// or rediss://).
    #[arg(long, value_name = "URL", value_parser = parse_redis_url,
          env = "SSE_BROADCAST_REDIS", help_heading = "Scale-out")]
    pub redis: Option<String>,

    /// Prefix of the Redis keys and Pub/Sub channel; instances with the same URL and prefix are
    /// one broadcast.
    #[arg(long, value_name = "TEXT", default_value = "sse-broadcast", value_parser = parse_redis_prefix,
          env = "SSE_BROADCAST_REDIS_PREFIX", help_heading = "Scale-out")]
    pub redis_prefix: String,

    /// Events kept for Last-Event-ID replay; 0 disables replay.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        env = "SSE_BROADCAST_HISTORY",
        help_heading = "Stream"
    )]
    pub history: usize,

    /// Events a client may lag behind before input waits for it.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576),
          env = "SSE_BROADCAST_CLIENT_BUFFER", help_heading = "Stream")]
    pub client_buffer: u32,

    /// A client that takes no event for DURATION while input waits for it is disconnected (it
    /// reconnects and replays what it missed from the history).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval,
          env = "SSE_BROADCAST_STALL_TIMEOUT", help_heading = "Stream")]
    pub stall_timeout: Duration,

    /// Streams allowed at once; further /events requests get 503 with Retry-After.
    #[arg(
        long,
        value_name = "N",
        env = "SSE_BROADCAST_MAX_CLIENTS",
        help_heading = "Stream"
    )]
    pub max_clients: Option<usize>,

    /// Read no input (and start no ticker) until N clients are connected to --channel.
    #[arg(
        long,
        value_name = "N",
        env = "SSE_BROADCAST_WAIT_CLIENTS",
        help_heading = "Lifecycle"
    )]
    pub wait_clients: Option<usize>,

    /// When input ends, deliver everything to the connected clients, end their streams, exit 0.
    #[arg(long, env = "SSE_BROADCAST_EXIT_ON_EOF", help_heading = "Lifecycle")]
    pub exit_on_eof: bool,

    /// Copy stdin lines to stdout as they are read (a pass-through in a pipeline).
    #[arg(long, env = "SSE_BROADCAST_TEE", help_heading = "Lifecycle")]
    pub tee: bool,

    /// Stdin lines longer than SIZE go out in pieces of SIZE bytes, each its own event
    /// (JSON lines that long are skipped). Accepts 4MiB, 64KiB, 1000000.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size,
          env = "SSE_BROADCAST_MAX_LINE_BYTES", help_heading = "Lifecycle")]
    pub max_line_bytes: usize,

    /// Only warnings and errors (the `listening on` line is always printed).
    #[arg(
        short,
        long,
        conflicts_with = "verbose",
        env = "SSE_BROADCAST_QUIET",
        help_heading = "Logging"
    )]
    pub quiet: bool,

    /// More detail (-vv for tracing). RUST_LOG overrides both.
    #[arg(short, long, action = ArgAction::Count, env = "SSE_BROADCAST_VERBOSE",
          help_heading = "Logging")]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "text",
        env = "SSE_BROADCAST_LOG_FORMAT",
        help_heading = "Logging"
    )]
    pub log_format: LogFormat,

    /// Print a completion script for SHELL and exit.
    #[arg(long, value_name = "SHELL")]
    pub completions: Option<Shell>,
}

/// Everything the program needs, settled.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    pub serve: ServeConfig,
    pub channels: ChannelConfig,
    /// `--max-clients`: streams allowed at once over all channels.
    pub max_clients: Option<usize>,
    /// Where the ticker and stdin publish.
    pub channel: ChannelName,
    pub max_channels: usize,
    /// `--redis`: several instances as one broadcast.
    pub redis: Option<RedisConfig>,
    pub ticker: Option<Ticker>,
    pub stdin: Option<StdinSource>,
    pub keep_alive: Option<Duration>,
    pub wait_clients: Option<usize>,
    pub exit_on_eof: bool,
    pub log: LogConfig,
}

impl Cli {
    /// Parses the command line; usage errors print and exit 2, `--completions` prints and exits 0.
    pub fn parse_config() -> Config {
        let matches = Cli::command().get_matches();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
        if let Some(shell) = cli.completions {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "sse-broadcast",
                &mut std::io::stdout(),
            );
            std::process::exit(0);
        }
        let stdin_is_terminal = std::io::stdin().is_terminal();
        match cli.into_config(&matches, stdin_is_terminal) {
            Ok(config) => config,
            Err((kind, message)) => Cli::command().error(kind, message).exit(),
        }
    }

    /// Settles the input mode and refuses flags that would mean nothing in it.
    fn into_config(
        self,
        matches: &ArgMatches,
        stdin_is_terminal: bool,
    ) -> Result<Config, (ErrorKind, String)> {
        let conflict = |message: &str| Err((ErrorKind::ArgumentConflict, message.to_string()));
        // Set on the command line or in the environment, not left at its default.
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let ticker_asked = self.interval.is_some() || self.count.is_some();
        let read_stdin = self.stdin || (!ticker_asked && !stdin_is_terminal);
        let tick = ticker_asked || !read_stdin;
        if !read_stdin {
            if self.format != Format::Text {
                return conflict("--format applies to stdin input; add --stdin");
            }
            if self.tee {
                return conflict("--tee copies stdin input; add --stdin");
            }
            if given("max_line_bytes") {
                return conflict("--max-line-bytes applies to stdin input; add --stdin");
            }
        }
        if !tick && given("message") {
            return conflict("--message is the ticker's message; add --interval (stdin is read)");
        }
        if self.exit_on_eof && !read_stdin && self.count.is_none() {
            return conflict(
                "--exit-on-eof needs input that ends: stdin (--stdin), or the ticker with --count",
            );
        }
        if self.publish_token.is_none() && given("max_body") {
            return conflict("--max-body limits POST publishing; add --publish-token");
        }
        if given("redis_prefix") && self.redis.is_none() {
            return conflict("--redis-prefix names the keys of --redis; add --redis URL");
        }
        if self.max_channels == 0 && !self.channel.is_default() {
            return conflict("--channel names a channel, but --max-channels 0 allows none");
        }
        if self.count == Some(0) {
            return Err((
                ErrorKind::ValueValidation,
                "--count must be at least 1".into(),
            ));
        }
        let ticker = tick.then(|| Ticker {
            every: self.interval.unwrap_or(DEFAULT_INTERVAL),
            template: self.message,
            event: self.event.clone(),
            count: self.count,
        });
        let stdin = read_stdin.then_some(StdinSource {
            format: self.format,
            event: self.event,
            max_line_bytes: self.max_line_bytes,
            tee: self.tee,
        });
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None, // clap's `requires` refuses one without the other
        };
        Ok(Config {
            listen: SocketAddr::new(self.bind, self.port),
            tls,
            serve: ServeConfig {
                events_path: self.events_path,
                static_dir: self.static_dir,
                cors: self.cors,
                retry: self.retry,
                auth: self.auth,
                publish: self.publish_token.map(|token| PublishConfig {
                    token,
                    max_body: self.max_body,
                }),
            },
            channels: ChannelConfig {
                history: self.history,
                client_buffer: self.client_buffer as usize,
                stall_timeout: self.stall_timeout,
            },
            max_clients: self.max_clients,
            redis: self.redis.map(|url| RedisConfig {
                url,
                prefix: self.redis_prefix,
                history: self.history,
            }),
            channel: self.channel,
            max_channels: self.max_channels,
            ticker,
            stdin,
            keep_alive: (!self.keep_alive.is_zero()).then_some(self.keep_alive),
            wait_clients: self.wait_clients.filter(|&n| n > 0),
            exit_on_eof: self.exit_on_eof,
            log: LogConfig {
                quiet: self.quiet,
                verbose: self.verbose,
                format: self.log_format,
            },
        })
    }
}

/// A `redis://` or `rediss://` URL the Redis client takes (checked here; reached at start).
fn parse_redis_url(text: &str) -> Result<String, String> {
    if !(text.starts_with("redis://") || text.starts_with("rediss://")) {
        return Err("expected redis://HOST[:PORT][/DB] or rediss://...".into());
    }
    redis::Client::open(text).map_err(|err| err.to_string())?;
    Ok(text.to_owned())
}

/// Braces would break the hash tag that keeps a channel's keys together; spaces read badly.
fn parse_redis_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['{', '}']) || text.contains(char::is_whitespace) {
        return Err("a prefix is non-empty, without braces or spaces".into());
    }
    Ok(text.to_owned())
}

/// "250ms", "2s", "1m30s", or "0" (= off). A bare number is refused with the fix.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{text}` needs a unit: {text}ms, {text}s or {text}m"
        ));
    }
    humantime::parse_duration(text).map_err(|err| format!("`{text}`: {err} (try 500ms, 2s, 1m)"))
}

/// A duration that must be positive (an interval of 0 would spin).
fn parse_interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("`{text}` must be longer than 0")),
        duration => Ok(duration),
    }
}

fn parse_size(text: &str) -> Result<usize, String> {
    let bytes =
        parse_size::parse_size(text).map_err(|err| format!("`{text}`: {err} (try 4MiB)"))?;
    match usize::try_from(bytes) {
        Ok(0) | Err(_) => Err(format!(
            "`{text}` must be between 1 byte and the address space"
        )),
        Ok(bytes) => Ok(bytes),
    }
}

fn parse_token(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the token must not be empty".into());
    }
    Ok(text.to_owned())
}

fn parse_events_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/')
        || text.contains(['?', '#'])
        || ["/", "/stats", "/metrics"].contains(&text)
    {
        return Err(format!(
            "`{text}` must start with / and not be /, /stats or /metrics, without ? or #"
        ));
    }
    Ok(text.to_owned())
}

/// An origin as a browser sends it: `scheme://host[:port]`, or `*`.
fn parse_origin(text: &str) -> Result<String, String> {
    if text == "*" {
        return Ok(text.to_owned());
    }
    let refuse =
        || format!("`{text}` is not an origin like https://example.com or http://localhost:3000");
    let uri: warp::http::Uri = text.parse().map_err(|_| refuse())?;
    let has_path = uri.path_and_query().is_some_and(|p| p.as_str() != "/") || text.ends_with('/');
    if uri.scheme().is_none() || uri.authority().is_none() || has_path {
        return Err(refuse());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["2", "2x", "-1s", "", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("2").unwrap_err().contains("2s"));
        assert!(parse_interval("0").is_err());
    }

    #[test]
    fn sizes_and_origins() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err() && parse_size("lots").is_err());
        assert!(parse_origin("https://a.example").is_ok());
        assert!(parse_origin("http://localhost:3000").is_ok());
        assert!(parse_origin("*").is_ok());
        for bad in ["a.example", "https://a.example/path", "https://a.example/"] {
            assert!(parse_origin(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn config(args: &[&str], stdin_is_terminal: bool) -> Result<Config, (ErrorKind, String)> {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("sse-broadcast").chain(args.iter().copied()))
            .unwrap();
        Cli::from_arg_matches(&matches)
            .unwrap()
            .into_config(&matches, stdin_is_terminal)
    }

    #[test]
    fn input_mode_follows_the_default_rule() {
        let bare = config(&[], true).unwrap();
        assert!(bare.ticker.is_some() && bare.stdin.is_none());
        assert_eq!(bare.ticker.unwrap().every, DEFAULT_INTERVAL);
        let piped = config(&[], false).unwrap();
        assert!(piped.ticker.is_none() && piped.stdin.is_some());
        let ticker_with_pipe = config(&["-i", "1s"], false).unwrap();
        assert!(ticker_with_pipe.ticker.is_some() && ticker_with_pipe.stdin.is_none());
        let both = config(&["-i", "1s", "--stdin"], true).unwrap();
        assert!(both.ticker.is_some() && both.stdin.is_some());
        assert!(config(&["-f", "json"], true).is_err());
        assert!(config(&["--tee", "-i", "1s"], false).is_err());
        assert!(config(&["--max-line-bytes", "1KiB", "-i", "1s"], false).is_err());
        assert!(
            config(&["-m", "x"], false).is_err(),
            "stdin is read: -m would be ignored"
        );
        assert!(config(&["-m", "x"], true).is_ok());
        assert!(config(&["--exit-on-eof", "-i", "1s"], true).is_err());
        assert!(config(&["--exit-on-eof", "-i", "1s", "--count", "2"], true).is_ok());
        assert!(config(&["--exit-on-eof"], false).is_ok());
        assert!(config(&["--max-body", "1KiB"], true).is_err());
        assert!(config(&["--max-body", "1KiB", "--publish-token", "t"], true).is_ok());
        assert!(config(&["--redis-prefix", "blue"], true).is_err());
        assert!(config(&["--redis-prefix", "blue", "--redis", "redis://h"], true).is_ok());
        assert!(config(&["--channel", "build", "--max-channels", "0"], true).is_err());
        assert!(config(&["--channel", "default", "--max-channels", "0"], true).is_ok());
    }

    #[test]
    fn man_page_is_current() {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/sse-broadcast.1");
        if std::env::var_os("UPDATE_MAN").is_some() {
            std::fs::write(path, &page).unwrap();
        }
        assert!(
            std::fs::read(path).unwrap_or_default() == page,
            "man/sse-broadcast.1 is stale: run UPDATE_MAN=1 cargo test man_page"
        );
    }
}
