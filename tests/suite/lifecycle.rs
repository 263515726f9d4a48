//! Lifecycle flags (DESIGN §2): `--wait-clients`, `--exit-on-eof`, `--tee`, `--max-line-bytes`,
//! and the last line of input without its line end.

use crate::common;

use common::{Input, Output, Server, TcpClient, count, data, ids};

fn numbered(prefix: &str, range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|n| format!("{prefix}{n}")).collect()
}

#[tokio::test]
async fn wait_clients_holds_input_until_the_second_client() {
    let mut server = Server::piped(&["--wait-clients", "2", "--keep-alive", "200ms"]);
    let mut first = server.raw("/events", &[]).await;
    server.wait_for_consumers(1).await;
    let before = count(&first.received, ":\n\n");
    for n in 1..=5 {
        server.write(format!("line {n}\n").as_bytes());
    }
    // A build that does not wait sends them at once, and a heartbeat waits for silence: three
    // more heartbeats with no event between them, timed by the server's own clock, show that the
    // lines are held. The second client asks for no replay: it sees them only if they waited.
    let body = first
        .read_until("three heartbeats after the input", |body| {
            count(body, ":\n\n") >= before + 3
        })
        .await;
    let text = String::from_utf8_lossy(body).into_owned();
    assert!(
        !text.contains("data:"),
        "input sent before the second client: {text:?}"
    );
    assert_eq!(server.stats().await["events_sent"], 0);

    let mut second = server.events("/events").await;
    let text =
        String::from_utf8_lossy(first.read_until_contains("data: line 5\n\n").await).into_owned();
    for n in 1..=5 {
        let frame = format!("id: {n}\ndata: line {n}\n\n");
        assert!(text.contains(&frame), "no {frame:?} in {text:?}");
    }
    let events = second.take(5).await;
    assert_eq!(data(&events), numbered("line ", 1..=5));
    assert_eq!(ids(&events), numbered("", 1..=5));
    // Input flows on once started.
    server.write(b"line 6\n");
    first.read_until_contains("id: 6\ndata: line 6\n\n").await;
    assert_eq!(second.next().await.data, "line 6");
}

#[tokio::test]
async fn exit_on_eof_delivers_everything_then_ends_the_streams_and_exits_0() {
    const LINES: u32 = 2000;
    let mut server = Server::piped(&["--exit-on-eof", "-q"]);
    let mut first = server.events("/events").await;
    let mut second = server.events("/events").await;
    server.wait_for_consumers(2).await;
    let input: String = (1..=LINES).map(|n| format!("line {n}\n")).collect();
    let feeder = server.feed(input.into_bytes());
    // Both are read at once, so neither holds the other back.
    let (a, b) = tokio::join!(first.until_end(), second.until_end());
    let expected = numbered("line ", 1..=LINES);
    assert_eq!(data(&a), expected);
    assert_eq!(data(&b), expected);
    feeder.join().unwrap();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
}

/// The most a socket's kernel send buffer can grow to (`net.ipv4.tcp_wmem`), in bytes.
fn kernel_send_buffer_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|text| text.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

/// How the exit gave up on the client that stopped reading.
#[derive(Debug, Clone, Copy, PartialEq)]
enum GivenUp {
    /// Input never waited for it (its buffer held everything), so it was never evicted; after
    /// the end, the exit stopped waiting once nothing moved for --stall-timeout.
    AfterTheEnd,
    /// Input waited for it, and it was evicted after --stall-timeout, before the end.
    Evicted,
}

/// 1 KiB lines with `--exit-on-eof`, one client reading them and one that never reads. Twice as
/// much as the kernel may buffer for the stuck one, so it is owed events whatever the machine.
async fn exit_on_eof_with_a_client_that_stopped_reading(given_up: GivenUp) {
    let lines = (2 * kernel_send_buffer_max() / 1000).max(3000);
    // Room for every line in the client buffer, or the default 1024 (a MiB), far less.
    let client_buffer = match given_up {
        GivenUp::AfterTheEnd => lines + 16,
        GivenUp::Evicted => 1024,
    }
    .to_string();
    let mut server = Server::piped(&[
        "--exit-on-eof",
        "--stall-timeout",
        "1s",
        "--client-buffer",
        &client_buffer,
        "-q",
    ]);
    // Sends its request and never reads.
    let _stuck = TcpClient::get(&server, "/events", Some(4096));
    let mut reader = server.events("/events").await;
    server.wait_for_consumers(2).await;
    let line = "x".repeat(1000);
    let input: String = (1..=lines).map(|n| format!("{n} {line}\n")).collect();
    let feeder = server.feed(input.into_bytes());
    let events = reader.until_end().await;
    assert_eq!(events.len(), lines);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.data == format!("{} {line}", i + 1))
    );
    feeder.join().unwrap();
    assert_eq!(server.wait_exit().code(), Some(0), "{}", server.stderr());
    // Given up on the way this case calls for, and said so.
    let log = server.stderr();
    let evicted = log.contains("disconnecting it");
    let after_the_end = log.contains("stopped reading; exiting without them");
    assert_eq!(
        (evicted, after_the_end),
        (
            given_up == GivenUp::Evicted,
            given_up == GivenUp::AfterTheEnd
        ),
        "{given_up:?}:\n{log}"
    );
}

#[tokio::test]
async fn exit_on_eof_gives_up_on_a_client_that_stopped_reading_after_the_end() {
    // The client buffer holds all the input, so input never waits; the stuck client is still
    // owed events when input ends, and the exit must not wait for it forever.
    exit_on_eof_with_a_client_that_stopped_reading(GivenUp::AfterTheEnd).await;
}

#[tokio::test]
async fn exit_on_eof_after_a_client_that_stopped_reading_was_dropped() {
    // Input waits for the stuck client, which is dropped after --stall-timeout.
    exit_on_eof_with_a_client_that_stopped_reading(GivenUp::Evicted).await;
}

#[tokio::test]
async fn exit_on_eof_without_clients_exits_0_promptly() {
    // Nothing to deliver, so nothing to wait for: with an hour's --stall-timeout, an exit that
    // waited for one would outlast `wait_exit`'s bound.
    let mut server = Server::piped(&["--exit-on-eof", "--stall-timeout", "1h"]);
    server.write(b"nobody\nlistens\n");
    server.wait_for_stat("events_sent", 2).await;
    server.close_stdin();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
}

#[tokio::test]
async fn a_last_line_without_a_line_end_is_delivered() {
    let mut server = Server::piped(&["--exit-on-eof"]);
    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    server.write(b"first\nsecond\nno line end");
    server.close_stdin();
    let events = client.until_end().await;
    assert_eq!(data(&events), ["first", "second", "no line end"]);
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[tokio::test]
async fn tee_copies_stdin_to_stdout_byte_for_byte() {
    let mut server = Server::start_with_output(
        &["--tee", "--exit-on-eof", "--max-line-bytes", "1KiB", "-q"],
        Input::Pipe,
        Output::Capture,
    );
    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    let mut input = Vec::new();
    for n in 1..=3000 {
        input.extend_from_slice(format!("line {n}\n").as_bytes());
    }
    // Line ends of every kind, empty lines, invalid UTF-8, a line longer than --max-line-bytes,
    // and a last line without its line end: the copy is the input, not what was sent.
    input.extend_from_slice(b"crlf\r\n\n\r\n  spaced  \n\xff\xfe not utf-8\n");
    input.extend_from_slice(&[b'x'; 5000]);
    input.extend_from_slice(b"\nthe end");
    let feeder = server.feed(input.clone());
    let events = client.until_end().await;
    feeder.join().unwrap();
    assert_eq!(server.wait_exit().code(), Some(0), "{}", server.stderr());
    let output = server.wait_stdout_closed();
    assert!(
        output == input,
        "stdout ({} bytes) differs from the input ({} bytes) first at byte {:?}",
        output.len(),
        input.len(),
        output.iter().zip(&input).position(|(a, b)| a != b)
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("the end"));
}

#[tokio::test]
async fn a_line_longer_than_max_line_bytes_goes_out_in_pieces() {
    const MIB: usize = 1 << 20;
    let mut server = Server::piped(&["--max-line-bytes", "1MiB", "--exit-on-eof"]);
    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    // 5 MiB of printable ASCII that differs from piece to piece and within each piece.
    let long: Vec<u8> = (0..5 * MIB)
        .map(|i| b'!' + ((i * 7 + i / MIB) % 94) as u8)
        .collect();
    let mut input = b"before\n".to_vec();
    input.extend_from_slice(&long);
    input.extend_from_slice(b"\nafter\n");
    let feeder = server.feed(input);
    let events = client.until_end().await;
    feeder.join().unwrap();

    let pieces: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        pieces.len(),
        7,
        "before, 5 pieces, after; got pieces of {:?} bytes",
        pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
    );
    assert_eq!(pieces[0], "before");
    assert_eq!(pieces[6], "after");
    assert!(pieces[1..6].iter().all(|p| p.len() == MIB));
    assert!(
        pieces[1..6].concat().as_bytes() == long,
        "the pieces joined differ from the line"
    );

    assert_eq!(server.wait_exit().code(), Some(0));
    let log = server.stderr();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("max-line-bytes"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the line:\n{log}");
    assert!(
        warnings[0].contains("line 2"),
        "the warning names line 2: {}",
        warnings[0]
    );
}

#[tokio::test]
async fn a_long_line_is_cut_between_characters() {
    // "a", then 2-byte characters: every 1 KiB boundary falls inside one.
    let mut line = String::from("a");
    line.push_str(&"é".repeat(2559));
    line.push('b');
    assert_eq!(line.len(), 5 * 1024);
    let mut server = Server::piped(&["--max-line-bytes", "1KiB", "--exit-on-eof"]);
    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    server.write(format!("{line}\n").as_bytes());
    server.close_stdin();
    let events = client.until_end().await;
    let pieces = data(&events);
    assert_eq!(
        pieces.len(),
        5,
        "{:?}",
        pieces.iter().map(String::len).collect::<Vec<_>>()
    );
    assert!(
        pieces.iter().all(|p| p.len().abs_diff(1024) <= 3),
        "pieces of about 1 KiB: {:?}",
        pieces.iter().map(String::len).collect::<Vec<_>>()
    );
    assert_eq!(pieces.concat(), line, "no character lost or replaced");
    assert_eq!(server.wait_exit().code(), Some(0));
    assert!(
        !server.stderr().contains("invalid UTF-8"),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn tee_into_a_reader_that_goes_away_keeps_the_stream_going() {
    // `sse-broadcast --tee | head -c 10`: head exits early, and stdout is a closed pipe.
    let mut command = std::process::Command::new("sh");
    command.args([
        "-c",
        // --exit-on-eof: when the test drops its end of stdin, the binary ends too.
        r#"exec "$0" --port 0 --tee --exit-on-eof | head -c 10 >/dev/null"#,
        common::BIN,
    ]);
    let mut server = Server::spawn(command, Input::Pipe);
    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    let lines: Vec<String> = (1..=200)
        .map(|n| format!("line {n} {}", "x".repeat(500)))
        .collect();
    for line in &lines {
        server.write(format!("{line}\n").as_bytes());
    }
    assert_eq!(data(&client.take(200).await), lines);
    // Still serving after its stdout went away.
    assert_eq!(server.stats().await["events_sent"], 200);
    server.close_stdin();
    assert!(client.until_end().await.is_empty());
    assert!(server.wait_exit().success(), "{}", server.stderr());
}
