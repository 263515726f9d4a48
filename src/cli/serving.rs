//! Serving flags: where the server listens, what it serves beside the stream, TLS, who may read
//! (Basic auth) and who may publish (POST with a bearer token).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args};
use ipnet::IpNet;

use super::values::{
    Switch, parse_cidr, parse_credentials, parse_events_path, parse_host_name, parse_origin,
    parse_size, parse_token, secret,
};
use crate::access::{Credentials, HostName};

#[derive(Debug, Args)]
#[command(next_help_heading = "Serving")]
pub struct ServingFlags {
    /// Port to listen on; 0 picks a free one (the `listening on` line names it).
    #[arg(short, long, default_value_t = 8080, env = "SSE_BROADCAST_PORT")]
    pub port: u16,

    /// Address to listen on; 0.0.0.0 or :: to serve the network.
    #[arg(
        short,
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1",
        env = "SSE_BROADCAST_BIND"
    )]
    pub bind: IpAddr,

    /// Also serve requests addressed to this host name (repeatable; any port).
    ///
    /// On a loopback --bind only requests whose Host names loopback (localhost, 127.x.x.x,
    /// [::1]) are served, others get 403: a web page on a DNS-rebinding name cannot read the
    /// stream. Add the names a reverse proxy or /etc/hosts gives this server. On another bind
    /// every Host is served, unless this flag is given: then the same rule holds there.
    #[arg(long, value_name = "NAME", value_parser = parse_host_name, action = ArgAction::Append,
          env = "SSE_BROADCAST_ALLOWED_HOST", value_delimiter = ',')]
    pub allowed_host: Vec<HostName>,

    /// Connections from CIDR (repeatable; 10.0.0.0/8, ::1/128, or one address) come from a
    /// proxy: the client's address is taken from their X-Forwarded-For (or, without it,
    /// Forwarded) header, the right-most address there that is not itself a trusted proxy.
    ///
    /// It names the client in logs, and is what the wrong-credential pacing and
    /// --max-streams-per-peer count by. Without this flag those headers are ignored.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr, action = ArgAction::Append,
          env = "SSE_BROADCAST_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<IpNet>,

    /// Serve DIR at / instead of the built-in viewer page (index.html for /).
    #[arg(
        short = 'd',
        long,
        value_name = "DIR",
        env = "SSE_BROADCAST_STATIC_DIR"
    )]
    pub static_dir: Option<PathBuf>,

    /// Let --static-dir follow symlinks that lead outside DIR.
    ///
    /// Without it a path that resolves outside DIR, once every symlink is followed, is 404 (a
    /// symlink that stays inside DIR is served).
    #[arg(
        long,
        requires = "static_dir",
        env = "SSE_BROADCAST_STATIC_FOLLOW_SYMLINKS", value_parser = Switch
    )]
    pub static_follow_symlinks: bool,

    /// Let --static-dir serve hidden files: names that start with '.'.
    ///
    /// Without it a path with any such name in it (.env, .git/config), or a symlink to one, is 404.
    #[arg(long, requires = "static_dir", env = "SSE_BROADCAST_STATIC_HIDDEN", value_parser = Switch)]
    pub static_hidden: bool,

    /// Path of the event stream.
    #[arg(long, value_name = "PATH", default_value = "/events", value_parser = parse_events_path,
          env = "SSE_BROADCAST_EVENTS_PATH")]
    pub events_path: String,

    /// Allow this origin to read the stream from another site (repeatable; * for any).
    #[arg(long, value_name = "ORIGIN", value_parser = parse_origin, action = ArgAction::Append,
          env = "SSE_BROADCAST_CORS", value_delimiter = ',')]
    pub cors: Vec<String>,

    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain; needs --tls-key.
    /// SIGHUP re-reads both files (a renewal) without dropping open streams.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "SSE_BROADCAST_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "SSE_BROADCAST_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Connections open at once; past it new ones are closed at once (counted).
    ///
    /// Streams, requests and handshakes in line all count. Default: the descriptor limit
    /// (`ulimit -n`) less a reserve for the server's own files.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          env = "SSE_BROADCAST_MAX_CONNECTIONS")]
    pub max_connections: Option<u64>,

    /// Require HTTP Basic credentials on every path. Prefer the environment variable
    /// SSE_BROADCAST_AUTH: the command line is visible to every user in `ps`.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        value_parser = secret(parse_credentials),
        env = "SSE_BROADCAST_AUTH",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub auth: Option<Credentials>,

    /// Named channels that hold events at once (besides the default one): their slots. A
    /// channel only readers wait on takes none (--max-clients bounds readers) and is never
    /// ended to make room. A publish that needs a slot when none is free is refused: a POST
    /// gets 503 with Retry-After, a stdin line is skipped with a warning; both are counted.
    /// Channels nobody reads that got nothing for 5 minutes free their slots.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        env = "SSE_BROADCAST_MAX_CHANNELS"
    )]
    pub max_channels: usize,

    /// Enable publishing with POST <events-path>[/CHANNEL] and `Authorization: Bearer TOKEN`
    /// (without it or a token key, POST gets 403). Prefer the environment variable: argv is
    /// visible in ps.
    #[arg(long, value_name = "TOKEN", value_parser = secret(parse_token), hide_env_values = true, allow_hyphen_values = true,
          env = "SSE_BROADCAST_PUBLISH_TOKEN")]
    pub publish_token: Option<String>,

    /// Largest POST body; a larger one gets 413. Accepts 1MiB, 64KiB, 1000000.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size,
          env = "SSE_BROADCAST_MAX_BODY")]
    pub max_body: usize,
}
