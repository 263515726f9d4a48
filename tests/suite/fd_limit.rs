//! Past the file-descriptor limit the server keeps working: open streams go on receiving, the
//! accept loop neither exits nor spins (one rate-limited warning, little CPU), and connections
//! waiting in the backlog are served once descriptors free up.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Input, Server, TcpClient, WAIT, cpu_time};

/// The server's descriptor limit; well below `CLIENTS`, well above what it needs at rest.
const FD_LIMIT: u32 = 64;
/// Streams opened at once: more than the server can hold.
const CLIENTS: usize = 80;
/// Clients of the flood kept open when the others leave: the last ones, queued in the backlog.
const KEPT: usize = 10;
const WARNING: &str = "cannot accept a connection";
/// The server's warning period for refused accepts.
const WARNING_PERIOD: Duration = Duration::from_secs(5);

/// Reads until the decoded body holds `needle`, or fails the test after `WAIT`.
fn read_until(client: &mut TcpClient, needle: &str) {
    let deadline = Instant::now() + WAIT;
    while common::find(&client.body, needle.as_bytes()).is_none() {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} within {WAIT:?}; body so far: {:?}",
            String::from_utf8_lossy(&client.body)
        );
        match client.read_some(64 * 1024) {
            Ok(0) => panic!(
                "the stream ended before {needle:?}; body: {:?}",
                String::from_utf8_lossy(&client.body)
            ),
            Ok(_) => {}
            Err(err) => panic!("reading the stream: {err}"),
        }
    }
}

/// The number of the last `tick N` in `body`.
fn last_tick(body: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(body);
    let at = text.rfind("data: tick ").expect("a tick read") + "data: tick ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a tick number")
}

/// The `sent id=N consumers=M` log lines after the first line holding `after`: (id, consumers).
fn sends_after(log: &str, after: &str) -> Vec<(u64, u64)> {
    let field = |line: &str, name: &str| -> Option<u64> {
        let rest = &line[line.find(name)? + name.len()..];
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    };
    log.lines()
        .skip_while(|line| !line.contains(after))
        .filter(|line| line.contains(" sent "))
        .filter_map(|line| Some((field(line, "id=")?, field(line, "consumers=")?)))
        .collect()
}

#[tokio::test]
async fn serving_goes_on_past_the_descriptor_limit() {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(["--port", "0", "-i", "100ms", "-m", "tick {seq}"])
        // Above the descriptor limit, so that the limit, not the cap, is what the flood meets
        // (tests/suite/connection_limits.rs tests the cap).
        .args(["--max-connections", "1000"]);
    let server = Server::spawn(command, Input::Null);

    // A stream opened well before the limit.
    let mut first = TcpClient::get(&server, "/events", None);
    read_until(&mut first, "data: tick");

    // The flood: every connect succeeds (the kernel queues what the server can't accept yet),
    // and each sends its GET at once.
    let mut flood: Vec<TcpClient> = (1..CLIENTS)
        .map(|_| TcpClient::get(&server, "/events", None))
        .collect();
    let log = server.wait_for_log(WARNING);
    let at_limit = Instant::now();
    assert!(
        log.contains("ulimit -n"),
        "the warning names the fix:\n{log}"
    );

    // At the limit, with connections still queued: the accept loop waits instead of spinning.
    // The window is ten ticks reaching the first stream (about a second), not a sleep: the
    // server has to go on sending through it.
    let cpu_before = cpu_time(server.pid());
    let wall = Instant::now();
    let tick = last_tick(&first.body);
    read_until(&mut first, &format!("data: tick {}\n", tick + 10));
    let cpu = cpu_time(server.pid()) - cpu_before;
    let wall = wall.elapsed();
    // It uses about 1% here (10 ms in that second), a busy loop a whole core: a spinning accept
    // loop fails this. A loaded machine can only lower the server's share, so half a core is
    // far from anything it could trip.
    assert!(
        cpu.as_secs_f64() < 0.5 * wall.as_secs_f64(),
        "at the descriptor limit the server used {cpu:?} of CPU in {wall:?}: a busy loop?"
    );

    // Events published while at the limit reach the streams opened before it: the first one and
    // the first of the flood (accepted long before the limit was reached).
    let log = server.wait_for_log_where("a send after the warning", |log| {
        !sends_after(log, WARNING).is_empty()
    });
    let sends = sends_after(&log, WARNING);
    let &(last_id, consumers) = sends.last().unwrap();
    assert!(
        (2..CLIENTS as u64).contains(&consumers),
        "{consumers} streams open at the limit of {FD_LIMIT} descriptors with {CLIENTS} clients"
    );
    for client in [&mut first, &mut flood[0]] {
        read_until(
            client,
            &format!("id: {}\ndata: tick {}\n\n", last_id + 2, last_id + 2),
        );
    }

    // The warning is rate-limited: no line per refused accept.
    let warnings = server.stderr().matches(WARNING).count();
    let allowed = 2 + (at_limit.elapsed().as_secs_f64() / WARNING_PERIOD.as_secs_f64()) as usize;
    assert!(
        warnings <= allowed,
        "{warnings} warnings in {:?} at the limit",
        at_limit.elapsed()
    );

    // Most clients leave; the last of the flood, queued in the backlog, are served now.
    let mut kept = flood.split_off(flood.len() - KEPT);
    drop(flood);
    for client in &mut kept {
        read_until(client, "data: tick");
        let head = client.head.as_deref().unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }

    // The accept loop is alive: a new client connects and receives events.
    let mut late = server.events("/events").await;
    assert_eq!(late.status, 200);
    assert!(late.next().await.data.starts_with("tick "));
    // The streams of the clients that left are gone (each ends at its next failed write).
    server.wait_for_consumers(1 + KEPT as u64 + 1).await;
    drop(first);
}
