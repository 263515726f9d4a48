//! Stdin lines as events, as a client sees them: exact data and ids for every line end, spaces,
//! empty lines, lines that look like SSE fields, non-ASCII text, invalid UTF-8, a long line, a last
//! line without a line end, JSON lines, `--event`, and several clients at once.

use crate::common;

use std::time::Duration;

use common::{Server, data, ids};
use eventsource_stream::Event;

/// Runs `--stdin --exit-on-eof --wait-clients 1 ARGS`, connects one client, writes `input`, closes
/// stdin, and returns what the client got before its stream ended, with the log. The process
/// must exit 0 once it has delivered everything.
async fn feed(args: &[&str], input: &[u8]) -> (Vec<Event>, String) {
    let mut all_args = vec!["--stdin", "--exit-on-eof", "--wait-clients", "1"];
    all_args.extend_from_slice(args);
    let mut server = Server::piped(&all_args);
    let mut client = server.events("/events").await;
    server.write(input);
    server.close_stdin();
    let events = client.until_end().await;
    let status = server.wait_exit();
    assert!(status.success(), "{status}; stderr:\n{}", server.stderr());
    (events, server.stderr())
}

/// `"1"`, `"2"`, … `"n"`: the hub's sequence numbers.
fn seq_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

/// The stderr lines logged at WARN level.
fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|line| line.contains(" WARN ")).collect()
}

/// Does `text` say "line N" for exactly this N (not "line 12" for N = 1)?
fn names_line(text: &str, number: u64) -> bool {
    let needle = format!("line {number}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn every_line_end_ends_a_line_and_a_lone_cr_breaks_the_data() {
    let (events, _) = feed(&[], b"unix\nwindows\r\nlone\rcr inside\nmixed\r\r\nnext\n").await;
    // "mixed\r\r\n": the line end is "\r\n"; the "\r" left before it is a lone one, which the
    // client reads as a line break: a trailing empty data line.
    assert_eq!(
        data(&events),
        ["unix", "windows", "lone\ncr inside", "mixed\n", "next"]
    );
    assert_eq!(ids(&events), seq_ids(5));
    assert!(events.iter().all(|e| e.event == "message"));
}

#[tokio::test]
async fn leading_and_trailing_spaces_are_kept() {
    let (events, _) = feed(&[], b"  two before\nafter two  \n \t both \t \n   \n").await;
    assert_eq!(
        data(&events),
        ["  two before", "after two  ", " \t both \t ", "   "]
    );
    assert_eq!(ids(&events), seq_ids(4));
}

#[tokio::test]
async fn empty_lines_are_not_sent_and_take_no_id() {
    let (events, log) = feed(&[], b"\nfirst\n\n\r\n\nsecond\r\n\n").await;
    assert_eq!(data(&events), ["first", "second"]);
    assert_eq!(ids(&events), seq_ids(2));
    assert!(log.contains("sent id=2 "), "{log}");
    assert!(
        !log.contains("sent id=3 "),
        "an empty line was sent:\n{log}"
    );
}

#[tokio::test]
async fn lines_that_look_like_sse_fields_arrive_verbatim_as_data() {
    let lines = [
        "data: x", "id: 5", ": c", ":", "event: y", "retry: 1", "data:", "id:7",
    ];
    let (events, _) = feed(&[], (lines.join("\n") + "\n").as_bytes()).await;
    assert_eq!(data(&events), lines);
    // None of them set the id, the event type or the reconnection delay.
    assert_eq!(ids(&events), seq_ids(lines.len()));
    assert!(events.iter().all(|e| e.event == "message"), "{events:?}");
    assert!(events.iter().all(|e| e.retry.is_none()), "{events:?}");
}

#[tokio::test]
async fn emoji_and_cjk_arrive_unchanged() {
    let lines = [
        "🎉 party 🦀",
        "日本語のテキスト",
        "中文，标点。",
        "한국어",
        "👩‍👩‍👧 family, ⚠️ sign, 🇫🇷 flag",
        "é (precomposed) and e\u{301} (combining)",
    ];
    let (events, _) = feed(&[], (lines.join("\n") + "\n").as_bytes()).await;
    assert_eq!(data(&events), lines);
    assert_eq!(ids(&events), seq_ids(lines.len()));
}

#[tokio::test]
async fn invalid_utf8_is_replaced_with_one_warning_naming_the_line() {
    // Line 3 (after an empty line 2, which still counts as an input line) holds two bad bytes.
    let (events, log) = feed(&[], b"fine\n\nbad \xff\xfe here\nfine again\n").await;
    assert_eq!(
        data(&events),
        ["fine", "bad \u{fffd}\u{fffd} here", "fine again"]
    );
    assert_eq!(ids(&events), seq_ids(3));
    let utf8_warnings: Vec<_> = warnings(&log)
        .into_iter()
        .filter(|line| line.contains("UTF-8"))
        .collect();
    assert_eq!(utf8_warnings.len(), 1, "{log}");
    assert!(names_line(utf8_warnings[0], 3), "{}", utf8_warnings[0]);
}

#[tokio::test]
async fn a_one_mebibyte_line_arrives_whole() {
    // Letters with a space every 1000 bytes, so a lost or repeated chunk shows.
    let line: String = (0..1u32 << 20)
        .map(|i| match i % 1000 {
            999 => ' ',
            _ => char::from(b'a' + (i % 26) as u8),
        })
        .collect();
    assert_eq!(line.len(), 1 << 20);
    let mut input = line.clone().into_bytes();
    input.extend_from_slice(b"\nafter\n");
    let (events, log) = feed(&[], &input).await;
    assert_eq!(events.len(), 2, "{:?}", ids(&events));
    assert!(
        events[0].data == line,
        "the long line came back as {} bytes, starting {:?}",
        events[0].data.len(),
        &events[0].data[..events[0].data.len().min(64)]
    );
    assert_eq!(events[1].data, "after");
    assert_eq!(ids(&events), seq_ids(2));
    assert!(warnings(&log).is_empty(), "{log}");
}

#[tokio::test]
async fn a_last_line_without_a_line_end_arrives_before_the_stream_ends() {
    let (events, log) = feed(&[], b"first\nno line end").await;
    assert_eq!(data(&events), ["first", "no line end"]);
    assert_eq!(ids(&events), seq_ids(2));
    assert!(log.contains("stdin ended"), "{log}");
}

#[tokio::test]
async fn a_last_line_without_a_line_end_arrives_when_stdin_closes() {
    let mut server = Server::piped(&["--stdin", "--wait-clients", "1"]);
    let mut client = server.events("/events").await;
    server.write(b"first\nunterminated \xe2\x9c\x93");
    assert_eq!(client.next().await.data, "first");
    server.close_stdin();
    let last = client.next().await;
    assert_eq!(
        (last.data.as_str(), last.id.as_str()),
        ("unterminated ✓", "2")
    );
    server.wait_for_log("stdin ended");
}

#[tokio::test]
async fn json_lines_set_data_event_id_and_retry() {
    let input = concat!(
        r#"{"data":"x","event":"e","id":"a1","retry":1500}"#,
        "\n",
        r#"{"data":"plain"}"#,
        "\n",
        r#"{"data":"two\nlines","event":"multi"}"#,
        "\r\n",
        r#"  {"id":"z9", "data":"spaced out"}  "#,
        "\n",
    );
    let (events, log) = feed(&["-f", "json"], input.as_bytes()).await;
    assert_eq!(
        events[0],
        Event {
            event: "e".into(),
            data: "x".into(),
            id: "a1".into(),
            retry: Some(Duration::from_millis(1500)),
        }
    );
    // Without an id of its own, an event gets the hub's sequence number (the second event).
    assert_eq!(
        events[1],
        Event {
            event: "message".into(),
            data: "plain".into(),
            id: "2".into(),
            retry: None,
        }
    );
    assert_eq!(
        (
            events[2].event.as_str(),
            events[2].data.as_str(),
            events[2].id.as_str()
        ),
        ("multi", "two\nlines", "3")
    );
    assert_eq!(
        (events[3].data.as_str(), events[3].id.as_str()),
        ("spaced out", "z9")
    );
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(warnings(&log).is_empty(), "{log}");
}

#[tokio::test]
async fn json_data_that_is_not_a_string_is_sent_as_compact_json() {
    // Keys in sorted order: this checks compaction, not whether key order is kept.
    let input = concat!(
        r#"{"data": {"a": [1, 2, {"b": null}], "m": "keeps  inner  spaces", "z": true}}"#,
        "\n",
        r#"{"data": [ 1 , 2.5 , "three" ]}"#,
        "\n",
        r#"{"data": 42}"#,
        "\n",
        r#"{"data": false}"#,
        "\n",
    );
    let (events, _) = feed(&["-f", "json"], input.as_bytes()).await;
    assert_eq!(
        data(&events),
        [
            r#"{"a":[1,2,{"b":null}],"m":"keeps  inner  spaces","z":true}"#,
            r#"[1,2.5,"three"]"#,
            "42",
            "false",
        ]
    );
    assert_eq!(ids(&events), seq_ids(4));
}

#[tokio::test]
async fn malformed_json_lines_are_skipped_with_a_warning_naming_the_line() {
    let input = concat!(
        r#"{"data":"one"}"#,
        "\n",
        "{nope\n",
        "not json at all\n",
        r#"{"data":"two"}"#,
        "\n",
        r#"{"dta":"typo"}"#,
        "\n",
        r#"{"data":"bad id","id":"a\nb"}"#,
        "\n",
        r#"{"data":"three"}"#,
        "\n",
    );
    let (events, log) = feed(&["-f", "json"], input.as_bytes()).await;
    assert_eq!(data(&events), ["one", "two", "three"]);
    assert_eq!(ids(&events), seq_ids(3));
    let warned = warnings(&log);
    for bad_line in [2, 3, 5, 6] {
        assert!(
            warned.iter().any(|w| names_line(w, bad_line)),
            "no warning names line {bad_line}:\n{log}"
        );
    }
}

#[tokio::test]
async fn event_flag_names_every_event() {
    let (events, _) = feed(&["--event", "update"], b"a\nb\nc\n").await;
    assert_eq!(data(&events), ["a", "b", "c"]);
    assert!(events.iter().all(|e| e.event == "update"), "{events:?}");
    let (events, _) = feed(&["-e", "log", "-f", "json"], b"{\"data\":\"j\"}\n").await;
    assert_eq!(events[0].event, "log");
}

#[tokio::test]
async fn two_clients_receive_identical_streams_and_each_send_logs_both() {
    let mut server = Server::piped(&["--stdin"]);
    let mut first = server.events("/events").await;
    let mut second = server.events("/events").await;
    server.wait_for_consumers(2).await;
    let input = "one\ntwo 🦀\n  three  \nfour\r\nfive\n";
    server.write(input.as_bytes());
    let got_first = first.take(5).await;
    let got_second = second.take(5).await;
    assert_eq!(
        data(&got_first),
        ["one", "two 🦀", "  three  ", "four", "five"]
    );
    assert_eq!(ids(&got_first), seq_ids(5));
    assert_eq!(got_first, got_second);
    let log = server.wait_for_log("sent id=5 ");
    for id in 1..=5 {
        let line = log
            .lines()
            .find(|line| line.contains(&format!("sent id={id} ")))
            .unwrap_or_else(|| panic!("no send logged for id {id}:\n{log}"));
        assert!(line.contains("consumers=2"), "{line}");
    }
    // Nothing else was sent to either: the next event each gets is the next line.
    server.write(b"six\n");
    for client in [&mut first, &mut second] {
        assert_eq!(client.next_is("six").await.id, "6");
    }
}

#[tokio::test]
async fn consumer_count_follows_the_clients_connected() {
    let mut server = Server::piped(&["--stdin"]);
    let mut first = server.events("/events").await;
    server.wait_for_consumers(1).await;
    server.write(b"to one\n");
    assert_eq!(first.next().await.data, "to one");
    let mut second = server.events("/events").await;
    let mut third = server.events("/events").await;
    server.wait_for_consumers(3).await;
    server.write(b"to three\n");
    for client in [&mut first, &mut second, &mut third] {
        assert_eq!(client.next().await.data, "to three");
    }
    drop(third);
    drop(second);
    server.wait_for_consumers(1).await;
    server.write(b"to one again\n");
    assert_eq!(first.next().await.data, "to one again");
    let log = server.wait_for_log("sent id=3 ");
    for (id, consumers) in [(1, 1), (2, 3), (3, 1)] {
        let expected = format!("sent id={id} consumers={consumers}");
        assert!(log.contains(&expected), "no {expected:?} in:\n{log}");
    }
}

#[tokio::test]
async fn a_line_longer_than_max_line_bytes_goes_out_in_pieces_with_one_warning() {
    let (events, log) = feed(&["--max-line-bytes", "4"], b"abcdefghij\nok\n").await;
    assert_eq!(data(&events), ["abcd", "efgh", "ij", "ok"]);
    assert_eq!(ids(&events), seq_ids(4));
    let warned = warnings(&log);
    assert_eq!(warned.len(), 1, "{log}");
    assert!(names_line(warned[0], 1), "{}", warned[0]);
}

#[tokio::test]
async fn a_line_of_exactly_max_line_bytes_is_one_event_without_a_warning() {
    // "abcd" and "abc\r" (before its "\n") are 4 bytes: neither is longer than the limit.
    let (events, log) = feed(&["--max-line-bytes", "4"], b"abcd\nabc\r\nxyz\n").await;
    assert_eq!(data(&events), ["abcd", "abc", "xyz"]);
    assert_eq!(ids(&events), seq_ids(3));
    assert!(warnings(&log).is_empty(), "{log}");
}

#[tokio::test]
async fn a_json_line_longer_than_max_line_bytes_is_skipped_and_later_lines_arrive() {
    let long = format!(r#"{{"data":"{}"}}"#, "x".repeat(100));
    let input = format!("{long}\n{{\"data\":\"short\"}}\n");
    let (events, log) = feed(&["-f", "json", "--max-line-bytes", "64"], input.as_bytes()).await;
    assert_eq!(data(&events), ["short"]);
    assert_eq!(ids(&events), seq_ids(1));
    let warned = warnings(&log);
    assert_eq!(warned.len(), 1, "{log}");
    assert!(names_line(warned[0], 1), "{}", warned[0]);
}

#[tokio::test]
async fn a_json_line_of_exactly_max_line_bytes_is_sent() {
    let line = r#"{"data":"fits exactly"}"#;
    let limit = line.len().to_string();
    let input = format!("{line}\n{line}\r\n");
    let (events, log) = feed(
        &["-f", "json", "--max-line-bytes", &limit],
        input.as_bytes(),
    )
    .await;
    assert_eq!(data(&events), ["fits exactly", "fits exactly"]);
    assert!(warnings(&log).is_empty(), "{log}");
}
