//! The binary as a command line, for tests of its usage errors: no stdin, no configuration
//! inherited from the environment running the tests, and a time limit.

use std::time::Duration;

use assert_cmd::Command;

/// `sse-broadcast` with empty stdin, no `SSE_BROADCAST_*` or `RUST_LOG` from the caller's
/// environment, no colour, and killed after 15 s.
pub fn command() -> Command {
    let mut cmd = Command::cargo_bin("sse-broadcast").unwrap();
    cmd.write_stdin("")
        .timeout(Duration::from_secs(15))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SSE_BROADCAST_") {
            cmd.env_remove(name);
        }
    }
    cmd
}
