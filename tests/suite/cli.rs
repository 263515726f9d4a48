//! The command line as a user meets it: help, version, completions, and every usage error
//! (exit 2, naming the flag) and runtime error (exit 1, one line naming the flag or file).

use crate::common;

use predicates::prelude::*;

use common::cli::command as cmd;

/// Runs `sse-broadcast ARGS`, expects a usage error (exit 2, nothing on stdout) and returns stderr.
fn usage_error(args: &[&str]) -> String {
    let output = cmd()
        .args(args)
        .assert()
        .code(2)
        .stdout("")
        .get_output()
        .clone();
    String::from_utf8(output.stderr).unwrap()
}

/// Every flag of the contract (DESIGN.md §2, §5-§7) and the variable that sets it. The help
/// test checks that `--help` lists exactly these: a new flag fails it until it is added here.
const FLAGS: &[(&str, Option<&str>)] = &[
    ("--interval", Some("SSE_BROADCAST_INTERVAL")),
    ("--message", Some("SSE_BROADCAST_MESSAGE")),
    ("--count", Some("SSE_BROADCAST_COUNT")),
    ("--stdin", Some("SSE_BROADCAST_STDIN")),
    ("--format", Some("SSE_BROADCAST_FORMAT")),
    ("--event", Some("SSE_BROADCAST_EVENT")),
    ("--port", Some("SSE_BROADCAST_PORT")),
    ("--bind", Some("SSE_BROADCAST_BIND")),
    ("--static-dir", Some("SSE_BROADCAST_STATIC_DIR")),
    (
        "--static-follow-symlinks",
        Some("SSE_BROADCAST_STATIC_FOLLOW_SYMLINKS"),
    ),
    ("--static-hidden", Some("SSE_BROADCAST_STATIC_HIDDEN")),
    ("--events-path", Some("SSE_BROADCAST_EVENTS_PATH")),
    ("--cors", Some("SSE_BROADCAST_CORS")),
    ("--allowed-host", Some("SSE_BROADCAST_ALLOWED_HOST")),
    ("--trusted-proxy", Some("SSE_BROADCAST_TRUSTED_PROXY")),
    ("--tls-cert", Some("SSE_BROADCAST_TLS_CERT")),
    ("--tls-key", Some("SSE_BROADCAST_TLS_KEY")),
    ("--auth", Some("SSE_BROADCAST_AUTH")),
    ("--keep-alive", Some("SSE_BROADCAST_KEEP_ALIVE")),
    ("--retry", Some("SSE_BROADCAST_RETRY")),
    ("--history", Some("SSE_BROADCAST_HISTORY")),
    ("--history-bytes", Some("SSE_BROADCAST_HISTORY_BYTES")),
    ("--client-buffer", Some("SSE_BROADCAST_CLIENT_BUFFER")),
    ("--stall-timeout", Some("SSE_BROADCAST_STALL_TIMEOUT")),
    ("--max-stream-age", Some("SSE_BROADCAST_MAX_STREAM_AGE")),
    ("--max-clients", Some("SSE_BROADCAST_MAX_CLIENTS")),
    (
        "--max-streams-per-peer",
        Some("SSE_BROADCAST_MAX_STREAMS_PER_PEER"),
    ),
    ("--max-connections", Some("SSE_BROADCAST_MAX_CONNECTIONS")),
    ("--redis", Some("SSE_BROADCAST_REDIS")),
    ("--redis-prefix", Some("SSE_BROADCAST_REDIS_PREFIX")),
    ("--presence", Some("SSE_BROADCAST_PRESENCE")),
    ("--on-occupied", Some("SSE_BROADCAST_ON_OCCUPIED")),
    ("--on-vacated", Some("SSE_BROADCAST_ON_VACATED")),
    ("--authorize-url", Some("SSE_BROADCAST_AUTHORIZE_URL")),
    (
        "--authorize-timeout",
        Some("SSE_BROADCAST_AUTHORIZE_TIMEOUT"),
    ),
    ("--authorize-cache", Some("SSE_BROADCAST_AUTHORIZE_CACHE")),
    ("--wait-clients", Some("SSE_BROADCAST_WAIT_CLIENTS")),
    ("--exit-on-eof", Some("SSE_BROADCAST_EXIT_ON_EOF")),
    ("--drain", Some("SSE_BROADCAST_DRAIN")),
    ("--tee", Some("SSE_BROADCAST_TEE")),
    ("--max-line-bytes", Some("SSE_BROADCAST_MAX_LINE_BYTES")),
    ("--quiet", Some("SSE_BROADCAST_QUIET")),
    ("--log-format", Some("SSE_BROADCAST_LOG_FORMAT")),
    ("--channel", Some("SSE_BROADCAST_CHANNEL")),
    ("--max-channels", Some("SSE_BROADCAST_MAX_CHANNELS")),
    ("--publish-token", Some("SSE_BROADCAST_PUBLISH_TOKEN")),
    ("--max-body", Some("SSE_BROADCAST_MAX_BODY")),
    ("--jwt-secret", Some("SSE_BROADCAST_JWT_SECRET")),
    ("--jwt-key", Some("SSE_BROADCAST_JWT_KEY")),
    ("--jwt-audience", Some("SSE_BROADCAST_JWT_AUDIENCE")),
    ("--public", Some("SSE_BROADCAST_PUBLIC")),
    ("--verbose", Some("SSE_BROADCAST_VERBOSE")),
    // One-off actions: no variable.
    ("--completions", None),
    ("--version", None),
    ("--help", None),
];

/// Each flag `--help` documents (a line that opens with it, after the indent) and the variable
/// shown in its entry (`[env: NAME=…]`), in order.
fn flags_in_help(help: &str) -> Vec<(String, Option<String>)> {
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    for line in help.lines() {
        let entry = line.trim_start();
        let indent = line.len() - entry.len();
        let entry = entry
            .strip_prefix('-')
            .and_then(|rest| rest.split_once(", "))
            .filter(|(short, _)| short.len() == 1)
            .map_or(entry, |(_, long)| long);
        if (1..=8).contains(&indent) && entry.starts_with("--") {
            let name: String = entry
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            flags.push((name, None));
        } else if let Some(variable) = entry.strip_prefix("[env: ") {
            let name: String = variable
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let last = flags.last_mut().expect("an [env: …] line after a flag");
            assert!(last.1.is_none(), "two variables for {}", last.0);
            last.1 = Some(name);
        }
    }
    flags
}

#[test]
fn help_lists_every_flag_and_its_environment_variable() {
    let output = cmd()
        .arg("--help")
        .assert()
        .success()
        .stderr("")
        .get_output()
        .clone();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("SSE_BROADCAST_<FLAG>"), "{help}");
    let listed = flags_in_help(&help);
    let contract: Vec<(String, Option<String>)> = FLAGS
        .iter()
        .map(|(flag, variable)| (flag.to_string(), variable.map(str::to_owned)))
        .collect();
    for entry in &contract {
        assert!(
            listed.contains(entry),
            "--help does not list {entry:?}; it lists {listed:?}"
        );
    }
    for entry in &listed {
        assert!(
            contract.contains(entry),
            "--help lists {entry:?}, which the contract (FLAGS) lacks"
        );
    }
    for needle in ["/events", "/stats", "/metrics", "Exit status", "Examples"] {
        assert!(
            help.contains(needle),
            "--help does not mention {needle}:\n{help}"
        );
    }
}

#[test]
fn short_help_is_shorter_than_long_help() {
    let short = cmd()
        .arg("-h")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let long = cmd()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let short = String::from_utf8(short).unwrap();
    assert!(
        short.contains("--interval") && short.contains("--stdin"),
        "{short}"
    );
    assert!(short.len() < long.len());
}

#[test]
fn version_prints_name_and_version() {
    cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("sse-broadcast {}\n", env!("CARGO_PKG_VERSION")));
    cmd()
        .arg("-V")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_print_a_script() {
    cmd()
        .args(["--completions", "bash"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("complete")
                .and(predicate::str::contains("sse-broadcast"))
                .and(predicate::str::contains("--interval"))
                .and(predicate::str::contains("--static-dir")),
        );
    for shell in ["zsh", "fish"] {
        cmd()
            .args(["--completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("sse-broadcast"));
    }
    let stderr = usage_error(&["--completions", "tcsh"]);
    assert!(
        stderr.contains("--completions") && stderr.contains("bash"),
        "{stderr}"
    );
}

#[test]
fn an_interval_without_a_unit_is_refused_with_the_fix() {
    let stderr = usage_error(&["--interval", "2"]);
    assert!(stderr.contains("--interval"), "{stderr}");
    assert!(stderr.contains("2s"), "{stderr}");
    let stderr = usage_error(&["-i", "500"]);
    assert!(
        stderr.contains("--interval") && stderr.contains("500ms"),
        "{stderr}"
    );
}

#[test]
fn a_zero_or_bad_interval_is_refused() {
    // `=` keeps a leading `-` a value rather than an unknown flag.
    for bad in ["0", "0s", "-1s", "soon", "2h30x"] {
        let stderr = usage_error(&[&format!("--interval={bad}")]);
        assert!(stderr.contains("--interval"), "{bad}: {stderr}");
        assert!(stderr.contains(bad), "{bad}: {stderr}");
    }
}

#[test]
fn an_unknown_template_field_is_named_with_the_valid_ones() {
    let stderr = usage_error(&["-m", "{nope}"]);
    assert!(stderr.contains("--message"), "{stderr}");
    assert!(stderr.contains("{nope}"), "{stderr}");
    for field in ["{time}", "{unix}", "{unix_ms}", "{seq}", "{consumers}"] {
        assert!(stderr.contains(field), "{field} not listed: {stderr}");
    }
    let stderr = usage_error(&["-i", "1s", "--message", "ok {seq} {tmie}"]);
    assert!(stderr.contains("{tmie}"), "{stderr}");
}

#[test]
fn an_unknown_format_lists_the_formats() {
    let stderr = usage_error(&["-f", "xml"]);
    assert!(
        stderr.contains("--format") && stderr.contains("xml"),
        "{stderr}"
    );
    assert!(
        stderr.contains("text") && stderr.contains("json"),
        "{stderr}"
    );
}

#[test]
fn a_keep_alive_without_a_unit_is_refused() {
    let stderr = usage_error(&["--keep-alive", "5"]);
    assert!(stderr.contains("--keep-alive"), "{stderr}");
    assert!(stderr.contains("5s"), "{stderr}");
}

#[test]
fn a_cors_value_that_is_not_an_origin_is_refused() {
    for bad in ["not-an-origin", "https://a.example/path", "a.example"] {
        let stderr = usage_error(&["--cors", bad]);
        assert!(
            stderr.contains("--cors") && stderr.contains(bad),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn a_line_size_that_is_not_a_size_is_refused() {
    for bad in ["lots", "0", "-1", "1.5.3MiB"] {
        let stderr = usage_error(&[&format!("--max-line-bytes={bad}")]);
        assert!(stderr.contains("--max-line-bytes"), "{bad}: {stderr}");
    }
}

#[test]
fn stdin_options_without_stdin_input_are_refused() {
    let stderr = usage_error(&["--format", "json", "--interval", "1s"]);
    assert!(
        stderr.contains("--format") && stderr.contains("--stdin"),
        "{stderr}"
    );
    let stderr = usage_error(&["--tee", "--interval", "1s"]);
    assert!(
        stderr.contains("--tee") && stderr.contains("--stdin"),
        "{stderr}"
    );
    let stderr = usage_error(&["--max-line-bytes", "1KiB", "--interval", "1s"]);
    assert!(stderr.contains("--max-line-bytes"), "{stderr}");
}

#[test]
fn flags_that_the_chosen_input_would_ignore_are_refused() {
    // Stdin is not a terminal here, so it is the input: a ticker message would go unused.
    let stderr = usage_error(&["--message", "hi"]);
    assert!(
        stderr.contains("--message") && stderr.contains("--interval"),
        "{stderr}"
    );
    // A ticker without --count never ends: --exit-on-eof would never apply.
    let stderr = usage_error(&["--exit-on-eof", "--interval", "1s"]);
    assert!(
        stderr.contains("--exit-on-eof") && stderr.contains("--count"),
        "{stderr}"
    );
}

#[test]
fn other_bad_values_name_their_flag() {
    let cases: &[&[&str]] = &[
        &["--port", "70000"],
        &["--bind", "localhost:80"],
        &["--allowed-host", "my.box:8080"],
        &["--allowed-host", "http://my.box"],
        &["--events-path", "events"],
        &["--events-path", "/stats"],
        &["--events-path", "/metrics"],
        &["--events-path", "/readyz"],
        &["--trusted-proxy", "10.0.0.0/33"],
        &["--trusted-proxy", "proxy.local"],
        &["--max-streams-per-peer", "0"],
        &["--channel", "a/b"],
        &["--channel", ".hidden"],
        &["--max-channels=-1"],
        &["--publish-token", ""],
        &["--max-body", "1KiB"],
        &["--max-body", "lots", "--publish-token", "t"],
        &["--channel", "build", "--max-channels", "0"],
        &["--count", "0", "-i", "1s"],
        &["--history=-1"],
        &["--history-bytes", "0"],
        &["--history-bytes", "lots"],
        &["--history-bytes=-1MiB"],
        &["--client-buffer", "0"],
        &["--stall-timeout", "3"],
        &["--retry", "1"],
        &["--log-format", "xml"],
        &["--quiet", "--verbose"],
    ];
    for args in cases {
        let stderr = usage_error(args);
        let flag = args[0].split('=').next().unwrap();
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

/// Arguments, environment variables, and the flag the error must name.
type SecretCase = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn no_secret_is_echoed_by_a_usage_error_or_the_help() {
    let secret = "hunter2-hunter2";
    let cases: &[SecretCase] = &[
        (&["--auth", ":hunter2-hunter2"], &[], "--auth"),
        (&[], &[("SSE_BROADCAST_AUTH", "hunter2-hunter2")], "--auth"),
        (&["--jwt-secret", "hunter2-hunter2"], &[], "--jwt-secret"),
        (
            &[],
            &[("SSE_BROADCAST_JWT_SECRET", "hunter2-hunter2")],
            "--jwt-secret",
        ),
        (&["--publish-token", " "], &[], "--publish-token"),
        (
            &["--redis", "redis://:hunter2-hunter2@[bad"],
            &[],
            "--redis",
        ),
    ];
    for (args, env, flag) in cases {
        let mut command = cmd();
        command.args(*args).args(["-i", "1s"]);
        for (name, value) in *env {
            command.env(name, value);
        }
        let output = command.assert().code(2).get_output().clone();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(flag), "{args:?} {env:?}: {stderr}");
        assert!(
            !stderr.contains(secret),
            "{args:?} {env:?} echoed: {stderr}"
        );
    }
    let output = cmd()
        .arg("--help")
        .env("SSE_BROADCAST_JWT_SECRET", secret)
        .env("SSE_BROADCAST_AUTH", format!("me:{secret}"))
        .env("SSE_BROADCAST_PUBLISH_TOKEN", secret)
        .env(
            "SSE_BROADCAST_REDIS",
            format!("redis://:{secret}@localhost"),
        )
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(!String::from_utf8(output.stdout).unwrap().contains(secret));
}

#[test]
fn token_flags_have_their_rules() {
    let secret = "0123456789abcdef0123456789abcdef";
    for (args, says) in [
        (
            vec!["--jwt-secret", secret, "--jwt-key", "key.pem"],
            "--jwt-key",
        ),
        (vec!["--jwt-secret", secret, "--auth", "me:pw"], "--auth"),
        (vec!["--public", "news.*"], "--jwt-secret"),
        (vec!["--jwt-audience", "hub"], "--jwt-key"),
        (vec!["--jwt-secret", secret, "--public", "a*b"], "--public"),
        (vec!["--jwt-secret", "short"], "32 bytes"),
    ] {
        let stderr = usage_error(&[args.as_slice(), &["-i", "1s"]].concat());
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("no-such-key.pem");
    let missing = missing.to_str().unwrap();
    let output = cmd()
        .args(["--port", "0", "-i", "1s", "--jwt-key", missing])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(missing) && stderr.contains("--jwt-key"),
        "{stderr}"
    );
}

#[test]
fn flags_are_read_from_the_environment() {
    let stderr = String::from_utf8(
        cmd()
            .env("SSE_BROADCAST_INTERVAL", "2")
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone(),
    )
    .unwrap();
    assert!(
        stderr.contains("--interval") && stderr.contains("2s"),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_is_one_line_naming_the_flags() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = cmd()
        .args(["--port", &port.to_string(), "-i", "1s"])
        .assert()
        .code(1)
        .stdout("")
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        format!(
            "sse-broadcast: cannot listen on 127.0.0.1:{port} (--bind, --port): Address already in use\n"
        )
    );
    drop(taken);
}

#[test]
fn a_missing_static_dir_is_one_line_naming_it() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("no-such-site");
    let missing = missing.to_str().unwrap();
    let output = cmd()
        .args(["--port", "0", "-i", "1s", "--static-dir", missing])
        .assert()
        .code(1)
        .stdout("")
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("sse-broadcast: "), "{stderr}");
    assert!(
        stderr.contains(missing) && stderr.contains("--static-dir"),
        "{stderr}"
    );
}

#[test]
fn a_static_dir_that_is_a_file_is_one_line_naming_it() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    let output = cmd()
        .args(["--port", "0", "-i", "1s", "-d", path])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(path) && stderr.contains("--static-dir"),
        "{stderr}"
    );
}
