//! Every duration flag has a range, checked at parse time (issue 18 item 7): a value past it
//! exits 2 naming the flag and the range, from the command line and from the environment,
//! instead of overflowing a timer later (`mul_f64` in a GET, `Instant + d` in the heartbeat,
//! the ticker or the first stall wait). At the top of its range each flag still works.

use crate::common;

use assert_cmd::Command;
use common::Server;

/// Each duration flag, its variable, a value just past its range and the range it names.
const FLAGS: &[(&str, &str, &str, &str)] = &[
    (
        "--interval",
        "SSE_BROADCAST_INTERVAL",
        "7days 1ms",
        "1ms to 7days",
    ),
    (
        "--keep-alive",
        "SSE_BROADCAST_KEEP_ALIVE",
        "1h 1ms",
        "1ms to 1h, or 0 for off",
    ),
    ("--retry", "SSE_BROADCAST_RETRY", "1day 1ms", "1ms to 1day"),
    (
        "--stall-timeout",
        "SSE_BROADCAST_STALL_TIMEOUT",
        "1day 1ms",
        "1ms to 1day",
    ),
];

/// The binary on a free port, as `common::cli` sets it up.
fn cmd() -> Command {
    let mut cmd = common::cli::command();
    cmd.args(["--port", "0"]);
    cmd
}

/// Expects exit 2 with nothing on stdout and no panic; returns stderr.
fn refused(mut cmd: Command) -> String {
    let output = cmd.assert().code(2).stdout("").get_output().clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn values_that_overflowed_a_timer_are_refused_naming_the_flag() {
    // The recipes of issue 18: each of these made the running server panic.
    for (flag, value) in [
        ("--retry", "500000000000y"),
        ("--keep-alive", "300000000000y"),
        ("--stall-timeout", "300000000000y"),
        ("--interval", "300000000000y"),
    ] {
        let mut command = cmd();
        command.args([flag, value]);
        let stderr = refused(command);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(stderr.contains("out of range"), "{flag}: {stderr}");
    }
}

#[test]
fn just_past_the_range_is_refused_from_argv_and_from_the_environment() {
    for &(flag, variable, past, range) in FLAGS {
        let mut from_argv = cmd();
        from_argv.arg(format!("{flag}={past}"));
        let mut from_env = cmd();
        from_env.env(variable, past);
        for stderr in [refused(from_argv), refused(from_env)] {
            assert!(stderr.contains(flag), "{flag}: {stderr}");
            assert!(
                stderr.contains(range),
                "{flag} should name {range:?}: {stderr}"
            );
        }
        let mut too_short = cmd();
        too_short.arg(format!("{flag}=999us"));
        let stderr = refused(too_short);
        assert!(stderr.contains(flag) && stderr.contains(range), "{stderr}");
    }
}

#[test]
fn the_help_states_each_range() {
    let output = cmd().arg("--help").assert().success().get_output().clone();
    // Words only: where clap wraps a line depends on the text around the range.
    let help = String::from_utf8(output.stdout).unwrap();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for (flag, range) in [
        ("--interval", "1ms to 7 days"),
        ("--keep-alive", "1ms to 1h"),
        ("--retry", "1ms to 1 day"),
        ("--stall-timeout", "1ms to 1 day"),
    ] {
        let section = &help[help.find(&format!("{flag} <")).unwrap()..];
        let section = &section[..section.find("[env:").unwrap()];
        assert!(
            section.contains(range),
            "{flag} help lacks {range:?}: {section}"
        );
    }
}

#[tokio::test]
async fn each_flag_works_at_the_top_of_its_range() {
    let mut server = Server::piped(&[
        "--retry",
        "1day",
        "--keep-alive",
        "1h",
        "--stall-timeout",
        "1day",
        "--interval",
        "7days",
        "--stdin",
    ]);
    let mut raw = server.raw("/events", &[]).await;
    let body = raw.read_until_contains("\n\n").await;
    let text = String::from_utf8_lossy(body).into_owned();
    let millis: u64 = text
        .strip_prefix("retry: ")
        .and_then(|rest| rest.split('\n').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("the stream should open with `retry: N`: {text:?}"));
    assert!(
        (86_400_000..=129_600_000).contains(&millis),
        "retry {millis} outside [1 day, 1.5 days]"
    );
    // The weekly ticker waits for its first tick (a week away) without overflowing, and stdin's
    // lines go out beside it.
    let mut client = server.events("/events").await;
    server.wait_for_consumers(2).await;
    server.write(b"still serving\n");
    assert_eq!(client.next().await.data, "still serving");
    assert!(server.is_running(), "{}", server.stderr());
}

#[test]
fn test_timeouts_out_of_range_are_one_line_errors_not_panics() {
    for (value, range) in [
        ("h2-idle=300000000000y", "out of range: 1ms to 1h"),
        ("head=0s", "out of range: 1ms to 1h"),
    ] {
        let mut cmd = cmd();
        cmd.env("SSE_BROADCAST_TEST_TIMEOUTS", value);
        let output = cmd.assert().code(1).stdout("").get_output().clone();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{stderr}");
        let line = stderr.lines().last().unwrap_or_default();
        assert!(
            line.starts_with("sse-broadcast: SSE_BROADCAST_TEST_TIMEOUTS")
                && line.contains(value)
                && line.contains(range),
            "{stderr}"
        );
    }
}
