//! The command line, as a tree of flag groups: one file per help heading (`input.rs`,
//! `serving.rs`, `stream.rs`, `scale_out.rs`, `applications.rs`, `lifecycle.rs`,
//! `logging.rs`), flattened into `Cli` in the order the headings appear in `--help` and the man
//! page; `values.rs` holds their value parsers. Here `Cli` → `Config`, where what depends on the environment (is stdin a
//! terminal?) is settled; `rules.rs` refuses flags that would mean nothing together.

mod applications;
mod input;
mod lifecycle;
mod listen;
mod logging;
#[cfg(test)]
mod reference;
mod rules;
mod scale_out;
mod secret;
mod serving;
mod stream;
mod tokens;
mod values;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use clap_complete::Shell;

use crate::access::{AllowedHosts, KeySource, SecretDigest, TokenConfig, TrustedProxies};
use crate::bus::RedisConfig;
use crate::channel::ChannelConfig;
use crate::channels::ChannelName;
use crate::listen::ListenConfig;
use crate::logging::LogConfig;
use crate::occupancy::Hooks;
use crate::serve_config::{PublishConfig, ServeConfig, StaticAccess};
use crate::serving::tls::TlsFiles;
use crate::source::stdin::StdinSource;
use crate::source::ticker::Ticker;

use applications::ApplicationFlags;
use input::InputFlags;
use lifecycle::LifecycleFlags;
use logging::LoggingFlags;
use scale_out::ScaleOutFlags;
use serving::ServingFlags;
use stream::StreamFlags;
use tokens::TokenFlags;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Said at warn when stdin, read because it is not a terminal, ends before its first line.
const EMPTY_STDIN: &str = "stdin ended before its first line: it is not a terminal (run with &, \
nohup or a service manager?), so it was read instead of ticking, and nothing will be published; \
give --interval 2s for the ticker, or --publish-token to publish with POST";
/// The same when POST publishes.
const EMPTY_STDIN_PUBLISHING: &str = "stdin ended before its first line: it is not a terminal \
(run with &, nohup or a service manager?), so it was read instead of ticking; only POST \
publishes now (give --interval 2s for the ticker as well)";

const AFTER_HELP: &str = "\
Exit status: 0 clean end (signal, --exit-on-eof), 1 runtime error (port in use, missing
static dir, ...), 2 usage error, 101 a panic in a task it cannot live without (a panic while
serving one connection ends that connection alone).

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
/// POST /events[/NAME] publishes. Every flag can also be set with SSE_BROADCAST_<FLAG> (a switch
/// such as --quiet with 1 or 0, true or false, yes or no, on or off).
#[derive(Debug, Parser)]
// A subcommand (`listen`) takes none of the server's flags, and a bare `sse-broadcast` serves.
#[command(name = "sse-broadcast", version, after_help = AFTER_HELP,
          args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    input: InputFlags,
    #[command(flatten)]
    serving: ServingFlags,
    #[command(flatten)]
    tokens: TokenFlags,
    #[command(flatten)]
    stream: StreamFlags,
    #[command(flatten)]
    scale_out: ScaleOutFlags,
    #[command(flatten)]
    applications: ApplicationFlags,
    #[command(flatten)]
    lifecycle: LifecycleFlags,
    #[command(flatten)]
    logging: LoggingFlags,

    /// Print a completion script for SHELL and exit.
    // No heading: clap lists it under "Options" with --help and --version, as before the split.
    #[arg(long, value_name = "SHELL", help_heading = None)]
    completions: Option<Shell>,

    #[command(subcommand)]
    command: Option<Subcommand>,
}

#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Read a Server-Sent Events stream: print each event, or run a command for it; reconnect
    /// and resume from the last event id, so nothing is lost across reconnects and restarts.
    ///
    /// Exit status: 0 after --count events, on 204 No Content, at the end of the stream with
    /// --no-reconnect, or on SIGINT/SIGTERM (after the event in hand); 1 runtime error (a 200
    /// that is not an event stream, a certificate that does not verify, --max-retries reached);
    /// 2 usage error; 3 refused (401, 403); 4 not there (404, 410); with --exec-failure exit,
    /// the command's status.
    Listen(listen::ListenFlags),
}

/// What the command line asks for: serve (the bare command), or listen to a stream.
#[derive(Debug)]
pub enum Run {
    Serve(Box<Config>),
    Listen(Box<ListenConfig>),
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
    /// `--max-streams-per-peer`: streams one client address may hold.
    pub max_streams_per_peer: Option<usize>,
    /// `--max-connections`, or its default from the descriptor limit.
    pub max_connections: usize,
    /// Where the ticker and stdin publish.
    pub channel: ChannelName,
    pub max_channels: usize,
    /// `--redis`: several instances as one broadcast.
    pub redis: Option<RedisConfig>,
    /// `--on-occupied`, `--on-vacated`.
    pub hooks: Hooks,
    /// `--presence`.
    pub presence: bool,
    pub ticker: Option<Ticker>,
    pub stdin: Option<StdinSource>,
    pub keep_alive: Option<Duration>,
    pub wait_clients: Option<usize>,
    pub exit_on_eof: bool,
    /// `--drain`; `None` for 0 (every stream ends at once).
    pub drain: Option<Duration>,
    pub log: LogConfig,
}

impl Cli {
    /// Parses the command line; usage errors print and exit 2, `--completions` prints and exits 0.
    pub fn parse_run() -> Run {
        let argv: Vec<OsString> = std::env::args_os().collect();
        let matches = Cli::command()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|err| {
                secret::unquoted_after_secret(err, &mut Cli::command(), &argv).exit()
            });
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
        if let Some(Subcommand::Listen(flags)) = cli.command.take() {
            return match flags.into_config() {
                Ok(config) => Run::Listen(Box::new(config)),
                Err((kind, message)) => {
                    let mut command = Cli::command();
                    let listen = command.find_subcommand_mut("listen").expect("declared");
                    listen.error(kind, message).exit()
                }
            };
        }
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
            Ok(config) => Run::Serve(Box::new(config)),
            Err((kind, message)) => Cli::command().error(kind, message).exit(),
        }
    }

    /// Settles the input mode and refuses flags that would mean nothing in it.
    fn into_config(
        self,
        matches: &ArgMatches,
        stdin_is_terminal: bool,
    ) -> Result<Config, (ErrorKind, String)> {
        // Set on the command line or in the environment, not left at its default.
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let ticker_asked = self.input.interval.is_some() || self.input.count.is_some();
        let read_stdin = self.input.stdin || (!ticker_asked && !stdin_is_terminal);
        let tick = ticker_asked || !read_stdin;
        rules::refuse_conflicts(&self, read_stdin, tick, given)?;
        let key = match (self.tokens.jwt_secret, self.tokens.jwt_key) {
            (Some(secret), _) => Some(KeySource::Secret(secret)),
            (None, Some(path)) => Some(KeySource::PemFile(path)),
            (None, None) => None, // clap refuses both at once
        };
        let ticker = tick.then(|| Ticker {
            every: self.input.interval.unwrap_or(DEFAULT_INTERVAL),
            template: self.input.message,
            event: self.input.event.clone(),
            count: self.input.count,
        });
        let publishing = self.serving.publish_token.is_some()
            || key.is_some()
            || self.applications.authorize_url.is_some();
        // Read only because it is not a terminal: in the background (`&`, nohup, a service
        // manager) that is often /dev/null, which ends at once and would leave the server silent.
        let implied = read_stdin && !self.input.stdin;
        let stdin = read_stdin.then_some(StdinSource {
            format: self.input.format.into(),
            event: self.input.event,
            max_line_bytes: self.lifecycle.max_line_bytes,
            tee: self.lifecycle.tee,
            if_empty: implied.then_some(if publishing {
                EMPTY_STDIN_PUBLISHING
            } else {
                EMPTY_STDIN
            }),
        });
        let tls = match (self.serving.tls_cert, self.serving.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None, // clap's `requires` refuses one without the other
        };
        Ok(Config {
            listen: SocketAddr::new(self.serving.bind, self.serving.port),
            tls,
            serve: ServeConfig {
                events_path: self.serving.events_path,
                static_dir: self.serving.static_dir,
                static_access: StaticAccess {
                    follow_symlinks: self.serving.static_follow_symlinks,
                    hidden: self.serving.static_hidden,
                },
                cors: self.serving.cors,
                retry: self.stream.retry,
                max_stream_age: self.stream.max_stream_age,
                auth: self.serving.auth,
                // Tokens publish when their claim allows it, so a key turns POST on.
                publish: publishing.then_some(PublishConfig {
                    token: (self.serving.publish_token.as_deref())
                        .map(|token| SecretDigest::of(token.as_bytes())),
                    max_body: self.serving.max_body,
                }),
                authorize: self.applications.authorize(&self.tokens.public),
                tokens: key.map(|key| TokenConfig {
                    key,
                    audience: self.tokens.jwt_audience,
                    public: self.tokens.public,
                }),
                // Off a loopback bind the server is meant to be reached under names it cannot
                // know, and it warns when nothing guards it; --allowed-host lists them.
                trusted_proxies: TrustedProxies::new(self.serving.trusted_proxy),
                allowed_hosts: (self.serving.bind.is_loopback()
                    || !self.serving.allowed_host.is_empty())
                .then(|| AllowedHosts::new(self.serving.allowed_host)),
            },
            channels: ChannelConfig {
                history: self.stream.history,
                history_bytes: self.stream.history_bytes,
                client_buffer: self.stream.client_buffer as usize,
                stall_timeout: self.stream.stall_timeout,
            },
            max_clients: self.stream.max_clients,
            max_streams_per_peer: self
                .stream
                .max_streams_per_peer
                .map(|max| usize::try_from(max).unwrap_or(usize::MAX)),
            max_connections: self
                .serving
                .max_connections
                .map_or_else(crate::serving::default_max_connections, |max| {
                    usize::try_from(max).unwrap_or(usize::MAX)
                }),
            redis: self.scale_out.redis.map(|url| RedisConfig {
                url,
                prefix: self.scale_out.redis_prefix,
                history: self.stream.history,
                history_bytes: self.stream.history_bytes,
                presence: self.applications.presence,
            }),
            hooks: self.applications.hooks(),
            presence: self.applications.presence,
            channel: self.input.channel,
            max_channels: self.serving.max_channels,
            ticker,
            stdin,
            keep_alive: (!self.stream.keep_alive.is_zero()).then_some(self.stream.keep_alive),
            wait_clients: self.lifecycle.wait_clients.filter(|&n| n > 0),
            exit_on_eof: self.lifecycle.exit_on_eof,
            drain: (!self.lifecycle.drain.is_zero()).then_some(self.lifecycle.drain),
            log: self.logging.config(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
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
        assert!(config(&["--history", "0", "--history-bytes", "1MiB"], true).is_err());
        assert!(config(&["--history-bytes", "1MiB"], true).is_ok());
        assert!(config(&["--redis-prefix", "blue"], true).is_err());
        assert!(config(&["--redis-prefix", "blue", "--redis", "redis://h"], true).is_ok());
        assert!(config(&["--channel", "build", "--max-channels", "0"], true).is_err());
        assert!(config(&["--channel", "default", "--max-channels", "0"], true).is_ok());
    }

    #[test]
    fn tokens_exclude_auth_and_turn_publishing_on() {
        let secret = "0123456789abcdef0123456789abcdef";
        let with_key = config(&["--jwt-secret", secret, "--public", "news.*,x"], true).unwrap();
        let tokens = with_key.serve.tokens.unwrap();
        assert_eq!(tokens.public.len(), 2);
        assert!(with_key.serve.publish.is_some_and(|p| p.token.is_none()));
        assert!(config(&["--jwt-secret", secret, "--auth", "me:pw"], true).is_err());
        assert!(config(&["--jwt-key", "k.pem", "--auth", "me:pw"], true).is_err());
        assert!(config(&["--public", "news"], true).is_err());
        let hook = config(&["--public", "news", "--authorize-url", "http://h/a"], true).unwrap();
        assert_eq!(hook.serve.authorize.unwrap().public.len(), 1);
        assert!(config(&["--authorize-cache", "1s"], true).is_err());
        let hook_and_auth = ["--authorize-url", "http://h/a", "--auth", "me:pw"];
        assert!(config(&hook_and_auth, true).is_err());
        assert!(config(&["--jwt-audience", "hub"], true).is_err());
        assert!(config(&["--max-body", "1KiB", "--jwt-key", "k.pem"], true).is_ok());
        assert!(config(&["-i", "1s"], true).unwrap().serve.publish.is_none());
    }
}
