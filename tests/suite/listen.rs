//! `sse-broadcast listen` reads what a browser's EventSource reads: a corpus of awkward events
//! from this server through every output mode, compared with a third-party client
//! (eventsource-stream over reqwest) reading the same stream at the same time; crafted bytes
//! from a scripted server for the parsing rules; a stream of several channels; each event out
//! at once on a quiet stream.

use crate::common;

use common::listener::{Listener, Scripted, records, sse_answer};
use common::{Client, Server};
use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;
use serde_json::{Value, json};

const LAST: &str = "the end";

/// The events the server publishes (as `-f json` lines): characters outside the BMP, line and
/// paragraph separators, data that looks like SSE fields, spaces at the ends, data of several
/// lines, a 1 MiB line, named events, a `retry`, then a burst of thousands.
fn corpus() -> Vec<Value> {
    let mut lines = vec![
        json!({"data": "plain"}),
        json!({"data": "astral 𝄞😀\u{10ffff} characters"}),
        json!({"data": "line\u{2028}separator\u{2029}paragraph\u{85}next"}),
        json!({"data": "data: looks like a field"}),
        json!({"data": "id: 99"}),
        json!({"data": "event: fake\nretry: 1\n: a comment\n\ndata:no space"}),
        json!({"data": " leading space"}),
        json!({"data": "trailing space "}),
        json!({"data": "\ttab and \u{feff}BOM inside"}),
        json!({"data": "quote \" backslash \\ {\"json\": [1]}"}),
        json!({"data": "é".repeat(512 * 1024)}),
        json!({"data": "named", "event": "build"}),
        json!({"data": "named message", "event": "message"}),
        json!({"data": "with retry", "retry": 2500}),
    ];
    lines.extend((0..3000).map(|n| json!({"data": format!("burst {n}")})));
    lines.push(json!({ "data": LAST }));
    lines
}

async fn parse_with_oracle(bytes: Vec<u8>) -> Vec<Event> {
    let chunks = [Ok::<_, std::convert::Infallible>(bytes::Bytes::from(bytes))];
    futures_util::stream::iter(chunks)
        .eventsource()
        .map(|event| event.unwrap())
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_output_mode_carries_what_a_third_party_client_reads() {
    let mut server = Server::piped(&["--stdin", "-f", "json", "--max-line-bytes", "8MiB", "-q"]);
    let url = server.url("/events");
    let data_null = Listener::start(&["-q", "-0", &url]);
    let data_lines = Listener::start(&["-q", &url]);
    let json_lines = Listener::start(&["-q", "-o", "json", &url]);
    let raw = Listener::start(&["-q", "-o", "raw", &url]);
    let mut oracle = Client::connect(&url, &[]).await;
    server.wait_for_consumers(5).await;

    let corpus = corpus();
    let mut input = Vec::new();
    for line in &corpus {
        input.extend_from_slice(line.to_string().as_bytes());
        input.push(b'\n');
    }
    let feeding = server.feed(input);
    let expected = oracle.take(corpus.len()).await;
    feeding.join().unwrap();
    let sent: Vec<&str> = corpus
        .iter()
        .map(|line| line["data"].as_str().unwrap())
        .collect();
    let read: Vec<&str> = expected.iter().map(|event| event.data.as_str()).collect();
    assert_eq!(read, sent, "the oracle reads what was sent");

    let out = data_null.wait_stdout("the last event", |out| out.ends_with(b"the end\0"));
    assert_eq!(records(&out, 0), sent, "-0: one record per event");

    let out = data_lines.wait_stdout("the last event", |out| out.ends_with(b"the end\n"));
    let joined: String = sent.iter().map(|data| format!("{data}\n")).collect();
    assert!(
        out == joined.as_bytes(),
        "-o data: each data then a newline"
    );

    let out = json_lines.wait_stdout("the last event", |out| out.ends_with(b"\"the end\"}\n"));
    let objects: Vec<Value> = records(&out, b'\n')
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), expected.len());
    for (object, event) in objects.iter().zip(&expected) {
        let mut want = json!({"id": event.id, "data": event.data});
        if event.event != "message" || object.get("event").is_some() {
            want["event"] = json!(event.event);
        }
        if let Some(retry) = event.retry {
            want["retry"] = json!(retry.as_millis() as u64);
        }
        assert_eq!(object, &want);
    }
    assert_eq!(
        objects[12]["event"], "message",
        "a named `message` keeps its name"
    );
    assert_eq!(objects[0].as_object().unwrap().len(), 2, "{}", objects[0]);

    let out = raw.wait_stdout("the last event", |out| out.ends_with(b"data: the end\n\n"));
    let reparsed = parse_with_oracle(out).await;
    assert_eq!(
        reparsed, expected,
        "-o raw is a stream that parses the same"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crafted_bytes_parse_as_a_browser_reads_them() {
    // Every rule of the WHATWG parser a crate may get wrong, each in the same stream.
    let body: &[u8] = b"\xef\xbb\xbfdata: after a BOM\r\rdata:cr only\rdata\r\r\
id: 1\r\ndata: crlf\r\n\r\n\
id: bad\0id\nretry: +5\nretry: 2s\ndata: id holding NUL ignored\n\n\
event: no data\nid: 2\n\n\
data: keeps id 2\n\n\
: a comment\nunknown: field\ndata\ndata\n\n\
data: bad \xff utf-8\n\n\
event: named\nretry: 250\ndata: x\n\n\
data: cut by the end";
    let server = Scripted::start(move |_, _| sse_answer(body));
    let mut listener = Listener::start(&["-q", "-o", "json", "--no-reconnect", &server.url("/")]);
    listener.expect_exit(0);
    let lines = records(&listener.stdout(), b'\n');
    assert_eq!(
        lines,
        [
            r#"{"data":"after a BOM"}"#,
            r#"{"data":"cr only\n"}"#,
            r#"{"id":"1","data":"crlf"}"#,
            r#"{"id":"1","data":"id holding NUL ignored"}"#,
            r#"{"id":"2","data":"keeps id 2"}"#,
            r#"{"id":"2","data":"\n"}"#,
            r#"{"id":"2","data":"bad � utf-8"}"#,
            r#"{"id":"2","event":"named","data":"x","retry":250}"#,
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_of_several_channels_names_each_events_channel() {
    let mut server = Server::piped(&["--stdin", "-f", "json", "-q"]);
    let url = server.url("/events/deploy,build");
    let listener = Listener::start(&["-q", "-o", "json", &url]);
    let mut oracle = Client::connect(&url, &[]).await;
    server.wait_for_consumers(4).await; // each stream counts once per channel
    server.write(
        b"{\"data\":\"d1\",\"channel\":\"deploy\"}\n{\"data\":\"b1\",\"channel\":\"build\"}\n",
    );
    server.write(b"{\"data\":\"d2\",\"channel\":\"deploy\",\"event\":\"done\"}\n");
    let expected = oracle.take(3).await;
    let lines: Vec<Value> = listener
        .wait_records(3, b'\n')
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(expected[1].id, "build:1,deploy:1");
    for (line, (event, channel)) in lines
        .iter()
        .zip(expected.iter().zip(["deploy", "build", "deploy"]))
    {
        assert_eq!(line["id"], event.id.as_str());
        assert_eq!(line["channel"], channel);
        assert_eq!(line["data"], event.data.as_str());
    }
    assert_eq!(lines[2]["event"], "done");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_is_printed_before_the_next_arrives() {
    // Output to a pipe is buffered per read from the socket; an event must not wait in that
    // buffer for more bytes. With no heartbeat, nothing follows an event until the test says.
    let mut server = Server::piped(&["--stdin", "--keep-alive", "0", "-q"]);
    let url = server.url("/events");
    let lines = Listener::start(&["-q", &url]);
    let nul = Listener::start(&["-q", "-0", "-o", "json", &url]);
    server.wait_for_consumers(2).await;
    for (n, data) in ["first", "second"].into_iter().enumerate() {
        server.write(format!("{data}\n").as_bytes());
        let out = lines.wait_stdout(data, |out| out.ends_with(format!("{data}\n").as_bytes()));
        assert_eq!(records(&out, b'\n').len(), n + 1);
        let want = format!("\"data\":\"{data}\"}}\0");
        let out = nul.wait_stdout(data, |out| out.ends_with(want.as_bytes()));
        assert_eq!(records(&out, 0).len(), n + 1);
    }
}

#[test]
fn help_completions_and_a_bare_server_know_the_subcommand() {
    let run = |args: &[&str]| {
        let output = std::process::Command::new(common::BIN)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let help = run(&["--help"]);
    assert!(
        help.contains("listen") && help.contains("--interval"),
        "{help}"
    );
    let listen_help = run(&["listen", "--help"]);
    for flag in [
        "--output",
        "--null",
        "--event",
        "--count",
        "--exec",
        "--exec-failure",
        "--since",
        "--cursor-file",
        "--no-reconnect",
        "--max-retries",
        "--header",
        "--token",
        "--user",
        "--cacert",
        "SSE_BROADCAST_LISTEN_TOKEN",
        "SSE_BROADCAST_LISTEN_USER",
    ] {
        assert!(
            listen_help.contains(flag),
            "{flag} missing from listen --help"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["--completions", shell]);
        assert!(
            script.contains("listen") && script.contains("cursor-file"),
            "{shell}"
        );
    }
    // A server flag after the subcommand is a usage error, not silently taken.
    let output = std::process::Command::new(common::BIN)
        .args(["listen", "--port", "9", "http://127.0.0.1:1/"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
