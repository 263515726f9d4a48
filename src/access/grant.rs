//! What a verified token allows (`Grant`: the channels it may read and publish, until when) and
//! why one is refused (`Invalid`, for the log line and the 401's body, never the token itself).
//! `token.rs` verifies; this file only answers questions about the result.

use std::fmt;
use std::time::{Duration, SystemTime};

use jsonwebtoken::errors::ErrorKind;

use super::pattern::Pattern;
use crate::channels::ChannelName;

/// What a verified token allows, until when.
#[derive(Debug, Clone)]
pub struct Grant {
    pub expires: SystemTime,
    pub(super) subscribe: Vec<Pattern>,
    pub(super) publish: Vec<Pattern>,
    /// The token's `sub`: the reader `--presence` names.
    pub user: Option<Box<str>>,
}

impl Grant {
    pub fn may_subscribe(&self, channel: &ChannelName) -> bool {
        self.subscribe
            .iter()
            .any(|pattern| pattern.matches(channel))
    }

    pub fn may_publish(&self, channel: &ChannelName) -> bool {
        self.publish.iter().any(|pattern| pattern.matches(channel))
    }

    /// `subscribe: ["*"]`, which `/stats` and `/metrics` need: they show every channel.
    pub fn subscribes_to_all(&self) -> bool {
        self.subscribe.contains(&Pattern::Prefix(String::new()))
    }

    /// How long the token still holds, from now: until `exp` + `LEEWAY` (zero once that
    /// passed).
    pub fn remaining(&self) -> Duration {
        self.expires
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}

/// Why a token was refused: for the log line and the 401's body, never the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    BadSignature,
    /// `alg` is not the key's (`none` included).
    Algorithm,
    Expired,
    NotYetValid,
    NoExpiry,
    Audience,
}

impl From<&ErrorKind> for Invalid {
    fn from(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSignature => Invalid::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => Invalid::Algorithm,
            // The only claim it requires is `aud`; `exp` and `nbf` are `verify`'s.
            ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidAudience => Invalid::Audience,
            _ => Invalid::Malformed,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invalid::Malformed => "malformed",
            Invalid::BadSignature => "bad signature",
            Invalid::Algorithm => "algorithm not accepted",
            Invalid::Expired => "expired",
            Invalid::NotYetValid => "not yet valid (nbf)",
            Invalid::NoExpiry => "no exp claim",
            Invalid::Audience => "wrong or missing aud",
        })
    }
}
