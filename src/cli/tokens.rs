//! Private-channel flags: the key that verifies readers' and publishers' tokens (an HS256
//! secret or a PEM public key, never both), the audience they must name, and the channels that
//! stay open to anyone.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::values::{parse_jwt_secret, parse_pattern, secret};
use crate::access::{Pattern, Secret};

#[derive(Debug, Args)]
#[command(next_help_heading = "Private channels")]
pub struct TokenFlags {
    /// Require tokens (JWTs, HS256 with this secret) to read private channels.
    ///
    /// Every channel but --public ones, /stats and /metrics then need a token; the secret is at
    /// least 32 bytes. A token's "sse_broadcast" claim lists the channels it may subscribe and
    /// publish to. Prefer the environment variable: argv is visible in ps.
    #[arg(long, value_name = "SECRET", value_parser = secret(parse_jwt_secret),
          conflicts_with = "jwt_key", hide_env_values = true, allow_hyphen_values = true, env = "SSE_BROADCAST_JWT_SECRET")]
    pub jwt_secret: Option<Secret>,

    /// Or: verify tokens with this PEM public key (RS256, ES256, EdDSA).
    ///
    /// The key's type sets the one algorithm accepted: RSA for RS256, EC P-256 for ES256,
    /// Ed25519 for EdDSA. Never with --jwt-secret.
    #[arg(long, value_name = "FILE", env = "SSE_BROADCAST_JWT_KEY")]
    pub jwt_key: Option<PathBuf>,

    /// Tokens must carry this `aud` claim.
    #[arg(long, value_name = "AUD", env = "SSE_BROADCAST_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// A channel anyone may read while tokens or --authorize-url are required (repeatable).
    ///
    /// A channel name, or a prefix ending in * (news.*).
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern, action = ArgAction::Append,
          value_delimiter = ',', env = "SSE_BROADCAST_PUBLIC")]
    pub public: Vec<Pattern>,
}
