//! Run in the background, stdin is no terminal, so a bare run reads it instead of ticking; there
//! it is /dev/null (`&`, a service manager) or unreadable (`nohup`) and ends before any line. The
//! server then says so at warn, with what to give: `--interval` for the ticker, or POST. A run
//! that asked for stdin, or read a line, is not warned.

use crate::common;

use std::process::Command;

use common::{BIN, Input, Server};

/// The stderr lines logged at WARN level.
fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|line| line.contains(" WARN ")).collect()
}

const WHY: &str = "stdin ended before its first line: it is not a terminal (run with &, nohup or a \
service manager?), so it was read instead of ticking";

#[test]
fn a_bare_run_on_dev_null_says_what_to_give() {
    // What `sse-broadcast &` in a script and a service manager give it.
    let server = Server::start(&[]);
    let log = server.wait_for_log(WHY);
    let warned = warnings(&log);
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].ends_with(&format!(
            "{WHY}, and nothing will be published; give --interval 2s for the ticker, or \
             --publish-token to publish with POST"
        )),
        "{log}"
    );
}

#[test]
fn a_bare_run_under_nohup_says_what_to_give() {
    // nohup, at a terminal, replaces stdin with a file open for writing only: reading it fails.
    let mut command = Command::new("nohup");
    command
        .arg(BIN)
        .args(["--port", "0"])
        .env("SSE_BROADCAST_PUBLISH_TOKEN", "a publish token");
    let server = Server::spawn(command, Input::Terminal);
    let log = server.wait_for_log(WHY);
    let warned = warnings(&log);
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].ends_with(&format!(
            "{WHY}; only POST publishes now (give --interval 2s for the ticker as well)"
        )),
        "{log}"
    );
}

#[test]
fn stdin_asked_for_or_read_is_not_warned_about() {
    let asked = Server::start(&["--stdin"]);
    let mut read = Server::piped(&[]);
    read.write(b"one line\n");
    read.close_stdin();
    for server in [asked, read] {
        let log = server.wait_for_log("stdin ended");
        assert!(warnings(&log).is_empty(), "{log}");
    }
}
