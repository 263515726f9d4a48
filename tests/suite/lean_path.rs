//! The lean path (a first request answered with an event stream is served without hyper) and
//! hyper answer alike, byte for byte: the same stream request is sent as a connection's first
//! request (lean) and after a keep-alive request on the same connection (hyper, which serves
//! every request after the first). Tricky heads (trickled byte by byte, pipelined, with a
//! body, HTTP/1.0, HEAD, oversize, malformed) get the answers HTTP says, and nothing hidden in
//! a request body is ever answered as a request.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    Server, TcpClient, WAIT, assert_answered_alike, body_data, count, find, server_address,
};

/// Pause between the pieces of a trickled head.
const PAUSE: Duration = Duration::from_millis(1);

/// One response as read off the socket.
#[derive(Debug)]
struct Answer {
    version: u8,
    status: u16,
    /// Header lines as sent, names lower-cased, without `date` (it changes by the second).
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads every response the server sends on a connection until it closes it. The last
/// `head_only` responses answer HEAD requests (no body, whatever the headers say).
fn answers(mut socket: TcpStream, head_requests: &[usize]) -> Vec<Answer> {
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut bytes = Vec::new();
    socket
        .read_to_end(&mut bytes)
        .expect("the server closes the connection");
    let mut answers = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(length) = response.parse(rest).unwrap() else {
            panic!("an incomplete head: {:?}", String::from_utf8_lossy(rest));
        };
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_ascii_lowercase(), value)
            })
            .filter(|(name, _)| name != "date")
            .collect();
        let mut answer = Answer {
            version: response.version.unwrap(),
            status: response.code.unwrap(),
            headers,
            body: Vec::new(),
        };
        rest = &rest[length..];
        let body_length = if head_requests.contains(&answers.len()) {
            0
        } else {
            match answer.header("content-length") {
                Some(length) => length.parse().unwrap(),
                None => rest.len(), // close-delimited
            }
        };
        answer.body = rest[..body_length].to_vec();
        rest = &rest[body_length..];
        answers.push(answer);
    }
    answers
}

/// Sends `request` in one write and reads every answer until the server closes.
fn exchange(server: &Server, request: &[u8], head_requests: &[usize]) -> Vec<Answer> {
    let mut socket = TcpStream::connect(server_address(server)).unwrap();
    socket.write_all(request).unwrap();
    answers(socket, head_requests)
}

/// Reads until the response head has arrived (the stream is subscribed by then).
fn wait_for_head(client: &mut TcpClient) {
    while client.head.is_none() {
        assert!(
            client.read_some(64 * 1024).unwrap() > 0,
            "closed before a head"
        );
    }
}

/// A connection whose first request (`GET /stats`, kept alive) is answered before `request`
/// is sent: hyper serves it, as it serves every request after a connection's first.
fn after_a_keep_alive_request(server: &Server, request: &[u8]) -> TcpClient {
    let mut socket = TcpStream::connect(server_address(server)).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
        .write_all(b"GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut read = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let n = socket.read(&mut buffer).unwrap();
        assert!(n > 0, "closed after /stats");
        read.extend_from_slice(&buffer[..n]);
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut fields);
        if let httparse::Status::Complete(length) = response.parse(&read).unwrap() {
            let content_length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .unwrap();
            assert_eq!(response.code, Some(200));
            if read.len() == length + content_length {
                break;
            }
        }
    }
    socket.write_all(request).unwrap();
    TcpClient {
        stream: socket,
        raw: Vec::new(),
        head: None,
        body: Vec::new(),
    }
}

#[tokio::test]
async fn a_stream_is_answered_alike_on_both_paths() {
    let mut server = Server::piped(&["--cors", "https://app.example"]);
    server.write(b"one\n");
    server.wait_for_stat("events_sent", 1).await;
    let cases: [(&str, &[&str]); 4] = [
        ("", &["two"]),
        ("Connection: close\r\n", &["two"]),
        // Each case sends "one" then "two": this third case comes after ids 1 to 4.
        ("Last-Event-ID: 4\r\n", &["one", "two"]),
        ("Origin: https://app.example\r\n", &["two"]),
    ];
    for (headers, expected) in cases {
        let request = format!(
            "GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{headers}\r\n"
        );
        // The lean one trickles its head in small writes: it must not matter.
        let mut lean = TcpClient::send(&server, request.as_bytes(), 7, PAUSE);
        let mut hyper = after_a_keep_alive_request(&server, request.as_bytes());
        wait_for_head(&mut lean);
        wait_for_head(&mut hyper);
        server.write(b"two\n");
        lean.read_until_body_contains("data: two");
        hyper.read_until_body_contains("data: two");
        let (lean_answer, hyper_answer) = ((&lean.head, &lean.body), (&hyper.head, &hyper.body));
        assert_answered_alike(lean_answer, hyper_answer, expected, headers).await;
        drop((lean, hyper));
        server.wait_for_consumers(0).await;
        // The next case starts from one kept event again.
        server.write(b"one\n");
    }
}

#[tokio::test]
async fn trickled_large_and_bodied_heads_get_a_stream() {
    let mut server = Server::piped(&[]);
    let pad = "p".repeat(20 * 1024);
    let requests = [
        // Byte by byte.
        (
            "byte by byte",
            "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
            1,
        ),
        // A head larger than the lean path reads: hyper takes it over.
        (
            "large head",
            format!("GET /events HTTP/1.1\r\nX-Pad: {pad}\r\n\r\n"),
            1000,
        ),
        // A GET with a body (hyper reads and drops it; the route ignores it).
        (
            "with a body",
            "GET /events HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_owned(),
            3,
        ),
        (
            "with a chunked body",
            "GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_owned(),
            3,
        ),
    ];
    let mut clients: Vec<_> = requests
        .iter()
        .map(|(what, request, piece)| {
            (
                what,
                TcpClient::send(&server, request.as_bytes(), *piece, PAUSE),
            )
        })
        .collect();
    for (_, client) in &mut clients {
        wait_for_head(client);
    }
    server.wait_for_consumers(clients.len() as u64).await;
    server.write(b"hello all\n");
    for (what, client) in &mut clients {
        client.read_until_body_contains("data: hello all");
        assert!(
            client
                .head
                .as_deref()
                .unwrap()
                .starts_with("HTTP/1.1 200 OK\r\n"),
            "{what}"
        );
        assert_eq!(body_data(&client.body).await, ["hello all"], "{what}");
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let mut server = Server::piped(&[]);
    server.write(b"kept\n");
    server.wait_for_stat("events_sent", 1).await;
    // A page and a stream in one write; then the stream ends at shutdown, which closes the
    // connection.
    let mut socket = TcpStream::connect(server_address(&server)).unwrap();
    socket
        .write_all(
            b"GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET /events?lastEventId=0 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .unwrap();
    server.wait_for_consumers(1).await;
    server.terminate();
    let answers = answers(socket, &[]);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].header("content-type"), Some("application/json"));
    assert_eq!(answers[1].header("content-type"), Some("text/event-stream"));
    assert_eq!(answers[1].header("transfer-encoding"), Some("chunked"));
    assert_eq!(count(&answers[1].body, "data: kept\n"), 1);
}

#[tokio::test]
async fn http_1_0_gets_a_close_delimited_stream() {
    let mut server = Server::piped(&[]);
    let mut socket = TcpStream::connect(server_address(&server)).unwrap();
    socket.write_all(b"GET /events HTTP/1.0\r\n\r\n").unwrap();
    server.wait_for_consumers(1).await;
    server.write(b"old client\n");
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + WAIT;
    while count(&read, "data: old client\n\n") == 0 {
        assert!(Instant::now() < deadline);
        let mut buffer = [0; 4096];
        let n = socket.read(&mut buffer).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&read));
        read.extend_from_slice(&buffer[..n]);
    }
    let end = find(&read, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&read[..end]);
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(body_data(&read[end + 4..]).await, ["old client"]);
}

#[tokio::test]
async fn a_request_inside_a_body_is_never_answered() {
    let server = Server::start(&["-i", "1h"]);
    let inner = "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let chunked = format!("{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
    let close = "GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for first in [
        format!(
            "GET /stats HTTP/1.1\r\nContent-Length: {}\r\n\r\n{inner}",
            inner.len()
        ),
        format!("GET /stats HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}"),
        format!(
            "POST /events HTTP/1.1\r\nContent-Length: {}\r\n\r\n{inner}",
            inner.len()
        ),
    ] {
        let answers = exchange(&server, format!("{first}{close}").as_bytes(), &[]);
        assert_eq!(answers.len(), 2, "{first:?}: {answers:?}");
        for answer in &answers {
            assert_ne!(
                answer.header("content-type"),
                Some("text/event-stream"),
                "{first:?}"
            );
        }
        assert_eq!(answers[1].header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn head_and_broken_heads_are_answered_as_before() {
    let server = Server::start(&["-i", "1h"]);
    // HEAD: an answer without a body, and the connection goes on.
    let answers = exchange(
        &server,
        b"HEAD /events HTTP/1.1\r\nHost: localhost\r\n\r\nGET /stats HTTP/1.1\r\nConnection: close\r\n\r\n",
        &[0],
    );
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers[0].body.is_empty());
    assert_eq!(answers[1].header("content-type"), Some("application/json"));
    // Malformed heads: 400, then the connection closes.
    for broken in [
        "GET /events HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "GET /ev ents HTTP/1.1\r\n\r\n",
        "GET /events HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let answers = exchange(&server, broken.as_bytes(), &[]);
        assert_eq!(answers.len(), 1, "{broken:?}: {answers:?}");
        assert_eq!(
            (answers[0].version, answers[0].status),
            (1, 400),
            "{broken:?}"
        );
    }
}

#[tokio::test]
async fn a_client_that_hangs_up_ends_its_stream() {
    let server = Server::start(&["-i", "1h"]);
    let mut client = TcpClient::get(&server, "/events", None);
    wait_for_head(&mut client);
    server.wait_for_consumers(1).await;
    drop(client);
    server.wait_for_consumers(0).await;
}
