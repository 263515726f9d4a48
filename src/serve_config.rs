//! What the routes serve, as the command line settles it: `ServeConfig` and its parts. It sits
//! below both `cli`, which builds it from the flags, and `routes/`, which serves by it, so the
//! flags never reach into the filter chain. The parts that say who may read and publish are
//! `access/`'s types.

use std::path::PathBuf;
use std::time::Duration;

use crate::access::{
    AllowedHosts, AuthorizeConfig, Credentials, SecretDigest, TokenConfig, TrustedProxies,
};

/// How the routes are set up.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub events_path: String,
    pub static_dir: Option<PathBuf>,
    /// What `static_dir` may serve beyond plain files under it.
    pub static_access: StaticAccess,
    /// Allowed origins; `*` allows any. Empty: no CORS headers at all.
    pub cors: Vec<String>,
    /// Reconnection delay sent at the start of each stream, spread over [R, 1.5 R].
    pub retry: Option<Duration>,
    /// `--max-stream-age`: each stream ends after about this long, told `retry:`.
    pub max_stream_age: Option<Duration>,
    /// `--auth`: every route needs these Basic credentials (publishing has its own token).
    pub auth: Option<Credentials>,
    /// `--jwt-secret` or `--jwt-key`: streams of private channels, `/stats` and `/metrics` need
    /// a token (never together with `--auth`).
    pub tokens: Option<TokenConfig>,
    /// `--authorize-url`: the application decides what a token or `--public` does not grant.
    pub authorize: Option<AuthorizeConfig>,
    /// POST publishing, when `--publish-token`, a token key or `--authorize-url` is given.
    pub publish: Option<PublishConfig>,
    /// `--trusted-proxy`: whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// The `Host` names served (loopback's and `--allowed-host`'s); `None`: any.
    pub allowed_hosts: Option<AllowedHosts>,
}

/// How POST publishing is set up (`--publish-token` or a token key, `--max-body`).
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// `--publish-token`'s digest (its `Debug` shows nothing of it); without it only tokens
    /// with a `publish` claim publish.
    pub token: Option<SecretDigest>,
    pub max_body: usize,
}

/// What `--static-dir` may serve beyond plain files under it.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaticAccess {
    /// `--static-follow-symlinks`: a symlink may lead outside DIR.
    pub follow_symlinks: bool,
    /// `--static-hidden`: names that start with '.' are served.
    pub hidden: bool,
}
