//! The rules between flag groups: a flag that would mean nothing in the chosen mode, or beside
//! another, is a usage error naming the fix, in clap's format (exit 2), never silence.

use clap::error::ErrorKind;

use super::Cli;
use super::input::FormatFlag;

/// Refuses what `cli` asks that would mean nothing: `read_stdin` and `tick` are the input mode
/// settled, `given(id)` whether a flag was set rather than left at its default.
pub(super) fn refuse_conflicts(
    cli: &Cli,
    read_stdin: bool,
    tick: bool,
    given: impl Fn(&str) -> bool,
) -> Result<(), (ErrorKind, String)> {
    let conflict = |message: &str| Err((ErrorKind::ArgumentConflict, message.to_string()));
    if !read_stdin {
        if cli.input.format != FormatFlag::Text {
            return conflict("--format applies to stdin input; add --stdin");
        }
        if cli.lifecycle.tee {
            return conflict("--tee copies stdin input; add --stdin");
        }
        if given("max_line_bytes") {
            return conflict("--max-line-bytes applies to stdin input; add --stdin");
        }
    }
    if !tick && given("message") {
        return conflict("--message is the ticker's message; add --interval (stdin is read)");
    }
    if cli.lifecycle.exit_on_eof && !read_stdin && cli.input.count.is_none() {
        return conflict(
            "--exit-on-eof needs input that ends: stdin (--stdin), or the ticker with --count",
        );
    }
    let key = cli.tokens.jwt_secret.is_some() || cli.tokens.jwt_key.is_some();
    if key && cli.serving.auth.is_some() {
        return conflict(
            "--auth and tokens (--jwt-secret, --jwt-key) are two ways for readers to prove who they are; pick one",
        );
    }
    let hook = cli.applications.authorize_url.is_some();
    // --auth's password rides in Authorization, which the backend would be told.
    if hook && cli.serving.auth.is_some() {
        return conflict(
            "--auth and --authorize-url are two ways for readers to prove who they are; pick one",
        );
    }
    if !key && cli.tokens.jwt_audience.is_some() {
        return conflict("--jwt-audience applies to tokens; add --jwt-secret or --jwt-key");
    }
    if !key && !hook && !cli.tokens.public.is_empty() {
        return conflict(
            "--public opens channels to readers without tokens; add --jwt-secret, --jwt-key or --authorize-url",
        );
    }
    if cli.serving.publish_token.is_none() && !key && !hook && given("max_body") {
        return conflict(
            "--max-body limits POST publishing; add --publish-token, a token key or --authorize-url",
        );
    }
    if !hook && (given("authorize_timeout") || given("authorize_cache")) {
        return conflict(
            "--authorize-timeout and --authorize-cache apply to --authorize-url; add it",
        );
    }
    if cli.stream.history == 0 && given("history_bytes") {
        return conflict("--history-bytes bounds the replay history, which --history 0 turns off");
    }
    if given("redis_prefix") && cli.scale_out.redis.is_none() {
        return conflict("--redis-prefix names the keys of --redis; add --redis URL");
    }
    if cli.applications.presence
        && cli.scale_out.redis.as_deref().is_some_and(|url| {
            url.starts_with("redis-cluster:") || url.starts_with("rediss-cluster:")
        })
    {
        return conflict(
            "--presence counts over instances through classic Redis Pub/Sub, which a Redis Cluster (--redis redis-cluster://) does not carry; use one Redis server or Sentinel",
        );
    }
    if cli.serving.max_channels == 0 && !cli.input.channel.is_default() {
        return conflict("--channel names a channel, but --max-channels 0 allows none");
    }
    if cli.input.count == Some(0) {
        return Err((
            ErrorKind::ValueValidation,
            "--count must be at least 1".into(),
        ));
    }
    Ok(())
}
