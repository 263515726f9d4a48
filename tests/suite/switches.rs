//! Switches (flags without a value) set from the environment as people write them:
//! `SSE_BROADCAST_QUIET=1`, `=yes`, `=on`, `=true` turn one on, `0`, `no`, `off`, `false` leave it
//! off; anything else is a usage error (exit 2) naming the variable and the words it takes.

use crate::common;

use std::process::Command;

use common::cli::command as cmd;
use common::{BIN, Input, Server};

/// Every switch and the variable that sets it.
const SWITCHES: &[&str] = &[
    "SSE_BROADCAST_STDIN",
    "SSE_BROADCAST_STATIC_FOLLOW_SYMLINKS",
    "SSE_BROADCAST_STATIC_HIDDEN",
    "SSE_BROADCAST_EXIT_ON_EOF",
    "SSE_BROADCAST_TEE",
    "SSE_BROADCAST_QUIET",
];
const ON: &[&str] = &["1", "yes", "on", "true", "TRUE", "Yes"];
const OFF: &[&str] = &["0", "no", "off", "false", "FALSE", "No"];

/// A ticker every 50 ms with `SSE_BROADCAST_QUIET` set to `value`.
fn ticker_with_quiet(value: &str) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["--port", "0", "-i", "50ms"])
        .env("SSE_BROADCAST_QUIET", value);
    Server::spawn(command, Input::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_from_the_environment_takes_1_yes_on_true() {
    for &value in ON {
        let server = ticker_with_quiet(value);
        let mut reader = server.events("/events").await;
        reader.take(3).await;
        let log = server.stderr();
        assert!(
            !log.contains(" INFO "),
            "SSE_BROADCAST_QUIET={value}:\n{log}"
        );
    }
    for &value in OFF {
        let server = ticker_with_quiet(value);
        let mut reader = server.events("/events").await;
        reader.take(3).await;
        server.wait_for_log(" INFO ");
    }
}

#[test]
fn exit_on_eof_from_the_environment_takes_yes() {
    cmd()
        .args(["--port", "0"])
        .env("SSE_BROADCAST_EXIT_ON_EOF", "yes")
        .write_stdin("one line\n")
        .assert()
        .success();
}

#[test]
fn every_switch_takes_the_usual_words_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    // `--completions` prints and exits 0 once the command line and environment are read.
    let parse = |variable: &str, value: &str| {
        cmd()
            .args(["--completions", "bash"])
            .env("SSE_BROADCAST_STATIC_DIR", dir.path())
            .env(variable, value)
            .assert()
    };
    for &variable in SWITCHES {
        for &value in ON.iter().chain(OFF) {
            parse(variable, value).success();
        }
        for garbage in ["maybe", "2", "yess"] {
            let output = parse(variable, garbage).code(2).get_output().clone();
            let stderr = String::from_utf8(output.stderr).unwrap();
            let first = stderr.lines().next().unwrap_or_default();
            assert_eq!(
                first,
                format!(
                    "error: invalid value '{garbage}' for {variable} ('--{}'): a switch is 1 or 0, \
                     true or false, yes or no, on or off",
                    variable["SSE_BROADCAST_".len()..]
                        .to_ascii_lowercase()
                        .replace('_', "-")
                ),
                "{stderr}"
            );
        }
    }
}
