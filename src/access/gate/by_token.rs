//! The decisions tokens make alone (DESIGN.md §10): a stream by its token's `subscribe`,
//! `/stats` and `/metrics` by `subscribe: ["*"]`, a POST by `--publish-token` or its token's
//! `publish`; their refusals (401 or 403 with RFC 6750's challenge) and the one warning per
//! period they log, which names the peer and never the token. `mod.rs` adds `--authorize-url`
//! in front of these and keeps each request's `Access`.

use super::Access;
use crate::access::denied;
use crate::access::digest::SecretDigest;
use crate::access::grant::Grant;
use crate::access::token::Tokens;
use crate::channels::ChannelName;
use crate::refused::Refused;

impl Access {
    /// Whether the stream of `channels` may open by tokens alone: `Ok(Some(grant))` when a
    /// token was needed (the stream ends at its expiry), `Ok(None)` when none was (no key, or
    /// every channel is public).
    pub(super) fn may_read_by_token(
        &self,
        channels: &[ChannelName],
    ) -> Result<Option<Grant>, Refused> {
        let Some(tokens) = &self.gate.tokens else {
            return Ok(None);
        };
        let mut private = channels.iter().filter(|name| !tokens.is_public(name));
        let Some(first) = private.next() else {
            return Ok(None);
        };
        let grant = self.verify(tokens, self.carried.as_deref())?;
        match std::iter::once(first)
            .chain(private)
            .find(|name| !grant.may_subscribe(name))
        {
            Some(name) => Err(self.insufficient(&format!("reading channel {name}"))),
            None => Ok(Some(grant)),
        }
    }

    /// `/stats` and `/metrics` show every channel: with a key set they need `subscribe: ["*"]`.
    pub fn may_read_all(&self) -> Result<(), Refused> {
        let Some(tokens) = &self.gate.tokens else {
            return Ok(());
        };
        let grant = self.verify(tokens, self.carried.as_deref())?;
        if grant.subscribes_to_all() {
            Ok(())
        } else {
            // Not a warning: the viewer page asks for /stats with whatever token its reader
            // holds, and a valid token for some channels is no attack (a forged or missing one
            // still warns, above).
            tracing::debug!("refused /stats or /metrics to a token without subscribe: [\"*\"]");
            Err(denied::insufficient_scope(
                "the token does not allow reading every channel (subscribe: [\"*\"])",
            ))
        }
    }

    /// Whether a POST may publish to `channel`: its bearer is `--publish-token` (compared as
    /// digests, so neither its bytes nor its length show in the time taken), or a token whose
    /// `publish` allows the channel.
    pub(super) fn may_publish_by_token(
        &self,
        channel: &ChannelName,
        publish_token: Option<&SecretDigest>,
    ) -> Result<(), Refused> {
        if let (Some(expected), Some(given)) = (publish_token, &self.header)
            && expected.matches(given.trim().as_bytes())
        {
            return Ok(());
        }
        let Some(tokens) = &self.gate.tokens else {
            self.warn("refused a POST without the --publish-token");
            return Err(denied::unauthorized(
                "missing or wrong token: send Authorization: Bearer <--publish-token>",
            ));
        };
        // Only the header publishes, so a refusal names only the header: a POST that carried
        // the cookie or the query was told to use what it had already sent.
        let Some(token) = self.header.as_deref() else {
            self.warn("refused a POST without a token in Authorization");
            return Err(denied::invalid_token(
                "a token is required to publish, in Authorization: Bearer (a cookie or ?access_token= never publishes)",
            ));
        };
        let grant = self.verify(tokens, Some(token))?;
        if grant.may_publish(channel) {
            Ok(())
        } else {
            Err(self.insufficient(&format!("publishing to channel {channel}")))
        }
    }

    pub(super) fn verify(&self, tokens: &Tokens, token: Option<&str>) -> Result<Grant, Refused> {
        let Some(token) = token else {
            self.warn("refused a request without a token");
            return Err(denied::invalid_token(
                "a token is required: Authorization: Bearer, the cookie sse_broadcast_token or ?access_token=",
            ));
        };
        tokens.verify(token).map_err(|invalid| {
            self.warn(&format!("refused a token: {invalid}"));
            denied::invalid_token(&format!("invalid token: {invalid}"))
        })
    }

    pub(super) fn insufficient(&self, what: &str) -> Refused {
        self.warn(&format!("refused a token that does not allow {what}"));
        denied::insufficient_scope(&format!("the token does not allow {what}"))
    }

    /// One warning per period at most, counting those held back; names the peer, never the token.
    pub(super) fn warn(&self, what: &str) {
        if let Some(attempts) = self.gate.warnings.note() {
            let peer = self
                .peer
                .map_or_else(|| "?".into(), |peer| peer.to_string());
            tracing::warn!(%peer, attempts, "{what}");
        }
    }
}
