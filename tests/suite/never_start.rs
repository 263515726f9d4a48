//! Connections that never start are closed, before any auth: a socket that sends nothing, the
//! HTTP/2 preface's first line and then silence (plain), a TLS connection that chose h2 and
//! sends nothing, and an HTTP/2 connection that answers pings but opens no stream (GOAWAY). A
//! connection with a stream open is not idle. The time-outs are shortened for the test.

use crate::common;

use std::process::Command;

use bytes::Bytes;
use common::tls::TestCert;
use common::{Input, Server, WAIT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUTS: &str = "first-bytes=1s,head=2s,h2-idle=2s";

fn server(args: &[String], input: Input) -> Server {
    let mut command = Command::new(common::BIN);
    command
        .args(["--port", "0", "--auth", "user:secret"])
        .args(args)
        .env("SSE_BROADCAST_TEST_TIMEOUTS", TIMEOUTS);
    Server::spawn(command, input)
}

/// Waits until the server closes `socket` (a read ends or fails), or fails the test.
async fn closed_by_server(mut socket: impl AsyncRead + Unpin, what: &str) {
    let mut scratch = vec![0; 4096];
    let closing = async {
        loop {
            match socket.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a GOAWAY, say
            }
        }
    };
    tokio::time::timeout(WAIT, closing)
        .await
        .unwrap_or_else(|_| panic!("{what} is still open"));
}

#[tokio::test]
async fn silent_and_half_started_plain_connections_are_closed() {
    let server = server(&[], Input::Null);
    let silent = TcpStream::connect(server.address()).await.unwrap();
    let mut preface_line = TcpStream::connect(server.address()).await.unwrap();
    preface_line.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut preface_only = TcpStream::connect(server.address()).await.unwrap();
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut half_head = TcpStream::connect(server.address()).await.unwrap();
    half_head
        .write_all(b"GET /events HTTP/1.1\r\n")
        .await
        .unwrap();
    closed_by_server(silent, "a silent socket").await;
    closed_by_server(
        preface_line,
        "a connection that sent the preface's first line",
    )
    .await;
    closed_by_server(preface_only, "an HTTP/2 connection that sent no SETTINGS").await;
    closed_by_server(half_head, "a connection with half a head").await;
}

#[tokio::test]
async fn a_tls_connection_that_chose_h2_and_says_nothing_is_closed() {
    let cert = TestCert::new();
    let server = server(&cert.args(), Input::Null);
    let silent = TcpStream::connect(server.address()).await.unwrap();
    let h2 = common::tls::handshake(&server.address(), &cert.cert_pem, &[b"h2"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let http1 = common::tls::handshake(&server.address(), &cert.cert_pem, &[b"http/1.1"]).await;
    closed_by_server(silent, "a silent socket on the TLS port").await;
    closed_by_server(h2, "a silent TLS connection that chose h2").await;
    closed_by_server(http1, "a silent TLS connection that chose HTTP/1.1").await;
}

/// An h2c connection that answers pings (the client's connection task runs) but opens no
/// stream gets a GOAWAY and is closed; one whose stream is open stays and gets its events.
#[tokio::test]
async fn an_http2_connection_without_a_stream_is_closed() {
    let mut server = server(&[], Input::Pipe);
    let idle_socket = TcpStream::connect(server.address()).await.unwrap();
    let (_idle_client, idle) = h2::client::handshake(idle_socket).await.unwrap();
    let idle = tokio::spawn(idle);

    let busy_socket = TcpStream::connect(server.address()).await.unwrap();
    let (busy_client, busy) = h2::client::handshake(busy_socket).await.unwrap();
    let busy = tokio::spawn(busy);
    let mut busy_client = busy_client.ready().await.unwrap();
    let request = http::Request::get(format!("http://{}/events", server.address()))
        .header("authorization", "Basic dXNlcjpzZWNyZXQ=")
        .body(())
        .unwrap();
    let (response, _) = busy_client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);

    // The idle one ends (h2's connection future resolves once the server closed it).
    let ended = tokio::time::timeout(WAIT, idle).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection is still open");
    // Past the idle time-out, the connection with a stream open still carries it: an idle
    // connection opened after its stream is closed first, by the server's own clock.
    let late_socket = TcpStream::connect(server.address()).await.unwrap();
    let (_late_client, late) = h2::client::handshake(late_socket).await.unwrap();
    let ended = tokio::time::timeout(WAIT, late).await;
    assert!(
        ended.is_ok(),
        "the later idle HTTP/2 connection is still open"
    );
    assert!(
        !busy.is_finished(),
        "the connection with a stream open was closed"
    );
    server.write(b"after the idle time-out\n");
    let mut body = response.into_body();
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("after the idle time-out") {
        let chunk: Bytes = tokio::time::timeout(WAIT, body.data())
            .await
            .expect("the event in time")
            .expect("the stream goes on")
            .unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
}
