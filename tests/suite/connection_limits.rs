//! What one client, or many, can make the server hold before any auth: a request head is capped
//! at 64 KiB (431, or the connection is cut), over plain HTTP/1.1 and over TLS; and
//! `--max-connections` caps open connections, closing new ones at once and counting them in
//! `/stats` and `/metrics`.

use crate::common;

use std::time::Instant;

use common::tls::TestCert;
use common::{Server, TcpClient, WAIT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A head that never ends: 400 KB of one header, then nothing.
fn unfinished_head() -> Vec<u8> {
    let mut head = b"GET /events HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 400_000));
    head
}

/// Sends the unfinished head (the server may stop reading it: a failed write is fine) and
/// returns what the server answered before it closed the connection.
async fn answer_to_unfinished_head(mut socket: impl AsyncRead + AsyncWrite + Unpin) -> String {
    let head = unfinished_head();
    let _ = tokio::time::timeout(WAIT, socket.write_all(&head)).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection was neither answered nor closed"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

/// Over TLS the server may close before the client has written the whole head; the client then
/// reads a reset, not the 431. An empty answer is that cut only while the server still runs and
/// serves: a crash looks the same from the socket.
async fn assert_refused_or_cut(server: &mut Server, answer: &str) {
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
        "{answer:?}"
    );
    assert!(
        server.is_running(),
        "the server exited:\n{}",
        server.stderr()
    );
    let stats = server.stats().await;
    assert_eq!(stats["consumers"], 0, "{stats}");
}

#[tokio::test]
async fn a_head_over_64_kib_gets_431_or_is_cut() {
    let server = Server::start(&["-i", "1s"]);
    let socket = TcpStream::connect(server.address()).await.unwrap();
    let answer = answer_to_unfinished_head(socket).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");

    let cert = TestCert::new();
    let mut server = common::tls::server(&cert, &["-i", "1s"]);
    let tls = common::tls::handshake(&server.address(), &cert.cert_pem, &[b"http/1.1"]).await;
    let answer = answer_to_unfinished_head(tls).await;
    assert_refused_or_cut(&mut server, &answer).await;

    // A head under the cap but over the lean path's 16 KiB is served.
    let server = Server::start(&["-i", "1s", "--retry", "1s"]);
    let mut socket = TcpStream::connect(server.address()).await.unwrap();
    let mut head = b"GET /events HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 40_000));
    head.extend_from_slice(b"\r\n\r\n");
    socket.write_all(&head).await.unwrap();
    let mut answer = vec![0; 15];
    tokio::time::timeout(WAIT, socket.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200 OK");
}

#[tokio::test]
async fn past_max_connections_new_ones_are_closed_and_counted() {
    // Three streams and the connection the harness keeps open for /stats.
    let server = Server::start(&["-i", "1s", "--max-connections", "4"]);
    let streams: Vec<TcpClient> = (0..3)
        .map(|_| TcpClient::get(&server, "/events", None))
        .collect();
    server.wait_for_consumers(3).await;
    let stats = server.stats().await;
    assert_eq!(stats["connections_refused"], 0, "{stats}");

    let mut streams = streams;
    for stream in &mut streams {
        stream.read_until_body_contains("data:");
    }
    // All four places are taken: a fifth connection is closed at once, never answered.
    let mut fourth = TcpStream::connect(server.address()).await.unwrap();
    fourth
        .write_all(b"GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap_or_default();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, fourth.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "{read:?} {answer:?}"
    );

    // One stream leaves; its place frees once the server has seen it go.
    streams.pop().unwrap().reset();
    let stats = get_once_free(&server.url("/stats")).await;
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["connections_refused"].as_u64() >= Some(1), "{stats}");
    let metrics = get_once_free(&server.url("/metrics")).await;
    let refused = metrics
        .lines()
        .find_map(|line| line.strip_prefix("sse_broadcast_connections_refused_total "))
        .expect("the counter in /metrics");
    assert!(refused.parse::<u64>().unwrap() >= 1, "{metrics}");
}

/// GET `url` on a new connection, again while the server closes it for want of a place.
async fn get_once_free(url: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = reqwest::get(url).await
            && let Ok(body) = response.text().await
        {
            return body;
        }
        assert!(Instant::now() < deadline, "no place freed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
