//! No secret is ever echoed (issues 15, 17): a usage error about `--auth`, `--publish-token`,
//! `--jwt-secret` or a password inside `--redis` names the flag and says what is wrong, but the secret appears
//! nowhere on stdout or stderr, whether it came from argv or from the environment; `--help`
//! never prints a secret variable's value.

use crate::common;

use assert_cmd::Command;

/// Stands for the secret in every case: found anywhere in the output, it leaked.
const SECRET: &str = "hunter2-s3cret";

/// The binary on a free port, as `common::cli` sets it up.
fn cmd() -> Command {
    let mut cmd = common::cli::command();
    cmd.args(["--port", "0"]);
    cmd
}

/// Expects a usage error (exit 2) that holds no secret; returns stderr.
fn refused_without_the_secret(mut cmd: Command) -> String {
    let output = cmd.assert().code(2).get_output().clone();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the secret leaked: {stdout}{stderr}"
    );
    stderr
}

fn with_args(args: &[&str]) -> Command {
    let mut command = cmd();
    command.args(args);
    command
}

fn with_env(variable: &str, value: &str) -> Command {
    let mut command = cmd();
    command.env(variable, value);
    command
}

#[test]
fn a_bad_auth_value_is_refused_without_the_password() {
    let forgotten_user = format!(":{SECRET}");
    let no_colon = SECRET.to_owned();
    let no_password = format!("{SECRET}:");
    for value in [&forgotten_user, &no_colon, &no_password] {
        for command in [
            with_args(&["--auth", value]),
            with_args(&[&format!("--auth={value}")]),
            with_env("SSE_BROADCAST_AUTH", value),
        ] {
            let stderr = refused_without_the_secret(command);
            assert!(stderr.contains("--auth"), "{stderr}");
            assert!(
                stderr.contains("USER:PASSWORD"),
                "says what is wrong: {stderr}"
            );
        }
    }
}

#[test]
fn a_password_given_as_a_separate_word_is_not_echoed() {
    // A password or token with a space, unquoted: clap would quote the stray word.
    for args in [
        &["--auth", "me:first-half", SECRET][..],
        &["--auth=me:first-half", SECRET],
        &["--publish-token", "first-half", SECRET],
        &[
            "--jwt-secret",
            "the-first-half-is-long-enough-already",
            SECRET,
        ],
    ] {
        let stderr = refused_without_the_secret(with_args(args));
        assert!(stderr.contains("unexpected argument after"), "{stderr}");
        assert!(
            stderr.contains(args[0].split('=').next().unwrap()),
            "{stderr}"
        );
    }
    // Elsewhere a stray word is still quoted, as clap does.
    let output = with_args(&["-i", "1s", "stray"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&output.stderr).contains("'stray'"));
}

#[test]
fn secrets_that_start_with_a_dash_are_values() {
    // Refused for --count, not for the token: clap would have read `-h...` as flags and quoted
    // the whole token in its tip.
    let token = format!("-{SECRET}");
    let stderr =
        refused_without_the_secret(with_args(&["--publish-token", &token, "--count", "0"]));
    assert!(stderr.contains("--count"), "{stderr}");
    let password = format!("me:-{SECRET}");
    let stderr = refused_without_the_secret(with_args(&["--auth", &password, "--count", "0"]));
    assert!(stderr.contains("--count"), "{stderr}");
    // At least 32 bytes, so that the secret itself is accepted.
    let key = format!("-{SECRET}-{SECRET}-{SECRET}");
    let stderr = refused_without_the_secret(with_args(&["--jwt-secret", &key, "--count", "0"]));
    assert!(stderr.contains("--count"), "{stderr}");
}

#[test]
fn a_blank_publish_token_is_refused_by_name() {
    for command in [
        with_args(&["--publish-token", " "]),
        with_env("SSE_BROADCAST_PUBLISH_TOKEN", " "),
    ] {
        let stderr = refused_without_the_secret(command);
        assert!(
            stderr.contains("--publish-token") && stderr.contains("empty"),
            "{stderr}"
        );
    }
}

#[test]
fn a_bad_redis_url_is_shown_with_its_password_masked() {
    for (url, masked) in [
        (
            format!("redis://:{SECRET}@cache:port"),
            "redis://…@cache:port",
        ),
        (
            format!("rediss://me:{SECRET}@cache/db"),
            "rediss://…@cache/db",
        ),
        (format!("http://:{SECRET}@cache"), "http://…@cache"),
        (format!("{SECRET}@cache"), "…@cache"),
    ] {
        for command in [
            with_args(&["--redis", &url]),
            with_env("SSE_BROADCAST_REDIS", &url),
        ] {
            let stderr = refused_without_the_secret(command);
            assert!(stderr.contains("--redis"), "{stderr}");
            assert!(stderr.contains(masked), "shows {masked:?}: {stderr}");
        }
    }
}

/// A Sentinel URL is split at its last `@` first: what a password holds (`#`, `:`, `/`) is
/// never read as a host, a port or the master, so no error quotes it. Before, the URL was cut
/// at its first `#`, and `the port of Sentinel :PASSWORD is not a port number` showed it.
#[test]
fn a_sentinel_password_holding_url_delimiters_stays_hidden() {
    for password in [
        format!("{SECRET}:x#y"),
        format!("{SECRET}#y"),
        format!("{SECRET}/2#m"),
        format!("x:{SECRET}#y"),
    ] {
        let url = format!("redis-sentinel://:{password}@s1:port#m");
        for command in [
            with_args(&["--redis", &url]),
            with_env("SSE_BROADCAST_REDIS", &url),
        ] {
            let stderr = refused_without_the_secret(command);
            assert!(stderr.contains("port"), "{stderr}");
            assert!(!stderr.contains("#y") && !stderr.contains("/2"), "{stderr}");
        }
    }
}

#[test]
fn help_prints_no_secret_variable() {
    let output = cmd()
        .arg("--help")
        .env("SSE_BROADCAST_AUTH", format!("me:{SECRET}"))
        .env("SSE_BROADCAST_PUBLISH_TOKEN", SECRET)
        .env("SSE_BROADCAST_REDIS", format!("redis://:{SECRET}@cache"))
        .assert()
        .success()
        .get_output()
        .clone();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("SSE_BROADCAST_REDIS"), "{help}");
    assert!(!help.contains(SECRET), "{help}");
}
