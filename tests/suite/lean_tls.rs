//! HTTP/1.1 over TLS: a connection whose first request is an event stream is served on the lean
//! path, over rustls's unbuffered connection, and answers exactly as hyper does over TLS (the
//! same stream request after a keep-alive request, which hyper serves). Lean TLS streams go on
//! across a certificate reload, a stalled one is evicted alone, and shutdown ends each one with
//! its last chunk and close_notify. The client is tokio-rustls offering only `http/1.1`.

use crate::common;

use std::sync::Arc;

use common::tls::{self, TestCert};
use common::{Server, WAIT, assert_answered_alike, body_data, count};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A stream request as a browser's EventSource sends it, with `headers` added.
fn stream_request(headers: &str) -> String {
    format!("GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{headers}\r\n")
}

/// An HTTP/1.1-only TLS client that reads the raw bytes: the head as sent and the body with
/// its chunk framing taken off.
struct TlsClient {
    stream: TlsStream<TcpStream>,
    raw: Vec<u8>,
    head: Option<String>,
    body: Vec<u8>,
    /// The last chunk arrived.
    ended: bool,
}

impl TlsClient {
    /// Connects trusting only `cert_pem`; `receive_buffer` shrinks the socket's (a client that
    /// stops reading then holds the server back sooner).
    async fn connect(
        server: &Server,
        cert_pem: &str,
        receive_buffer: Option<usize>,
    ) -> std::io::Result<TlsClient> {
        let address: std::net::SocketAddr = server.address().parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4()?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size as u32)?;
        }
        let tcp = socket.connect(address).await?;
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = ServerName::try_from("localhost").unwrap();
        let connecting = TlsConnector::from(Arc::new(config)).connect(name, tcp);
        let stream = tokio::time::timeout(WAIT, connecting).await??;
        Ok(TlsClient {
            stream,
            raw: Vec::new(),
            head: None,
            body: Vec::new(),
            ended: false,
        })
    }

    async fn send(&mut self, request: &str) {
        self.stream.write_all(request.as_bytes()).await.unwrap();
    }

    /// Reads once more (within `WAIT`) and decodes what came: `Ok(0)` at a clean end (the
    /// server's close_notify).
    async fn read_more(&mut self) -> std::io::Result<usize> {
        let mut buffer = [0; 16 * 1024];
        let read = tokio::time::timeout(WAIT, self.stream.read(&mut buffer))
            .await
            .expect("bytes or the end within WAIT")?;
        self.raw.extend_from_slice(&buffer[..read]);
        if self.head.is_none()
            && let Some(end) = common::find(&self.raw, b"\r\n\r\n")
        {
            self.head = Some(String::from_utf8_lossy(&self.raw[..end + 4]).into_owned());
            self.raw.drain(..end + 4);
        }
        while self.head.is_some() && !self.ended {
            let Ok(httparse::Status::Complete((start, size))) =
                httparse::parse_chunk_size(&self.raw)
            else {
                break;
            };
            let (start, size) = (start, size as usize);
            if self.raw.len() < start + size + 2 {
                break;
            }
            self.body.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
            self.ended = size == 0;
        }
        Ok(read)
    }

    async fn read_until_body_contains(&mut self, needle: &str) {
        // Only what came since the last look (and a needle's length before it) is searched: a
        // long body is read at the speed it comes.
        let mut from = 0;
        while count(&self.body[from..], needle) == 0 {
            from = self.body.len().saturating_sub(needle.len());
            let read = self.read_more().await.unwrap();
            assert!(read > 0, "ended before {needle:?}");
        }
    }

    /// Reads the answer to a request with a `content-length` (what `/stats` gets) and forgets
    /// it, so the next answer is read afresh.
    async fn read_sized_answer(&mut self) {
        while self.head.is_none() {
            assert!(self.read_more().await.unwrap() > 0, "closed before a head");
        }
        let head = self.head.take().unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        let length: usize = head
            .split("\r\n")
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("a content-length")
            .parse()
            .unwrap();
        while self.raw.len() < length {
            assert!(self.read_more().await.unwrap() > 0, "closed mid-answer");
        }
        self.raw.drain(..length);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_over_tls_is_answered_alike_on_both_paths() {
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &["--cors", "https://app.example"]);
    server.write(b"one\n");
    server.wait_for_stat("events_sent", 1).await;
    let cases: [(&str, &[&str]); 3] = [
        ("", &["two"]),
        ("Connection: close\r\n", &["two"]),
        // Each case sends "one" then "two": this third case comes after ids 1 to 4.
        (
            "Origin: https://app.example\r\nLast-Event-ID: 4\r\n",
            &["one", "two"],
        ),
    ];
    for (headers, expected) in cases {
        let request = stream_request(headers);
        let mut lean = TlsClient::connect(&server, &cert.cert_pem, None)
            .await
            .unwrap();
        lean.send(&request).await;
        // hyper answers every request after a connection's first.
        let mut hyper = TlsClient::connect(&server, &cert.cert_pem, None)
            .await
            .unwrap();
        hyper
            .send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await;
        hyper.read_sized_answer().await;
        hyper.send(&request).await;
        server.wait_for_consumers(2).await;
        server.write(b"two\n");
        lean.read_until_body_contains("data: two").await;
        hyper.read_until_body_contains("data: two").await;
        let (lean_answer, hyper_answer) = ((&lean.head, &lean.body), (&hyper.head, &hyper.body));
        assert_answered_alike(lean_answer, hyper_answer, expected, headers).await;
        drop((lean, hyper));
        server.wait_for_consumers(0).await;
        server.write(b"one\n"); // each case starts after one more kept event
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_keeps_lean_tls_streams_and_new_connections_get_the_new_certificate() {
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &[]);
    let mut open = TlsClient::connect(&server, &cert.cert_pem, None)
        .await
        .unwrap();
    open.send(&stream_request("")).await;
    server.wait_for_consumers(1).await;

    let renewed = cert.renew();
    server.signal("HUP");
    server.wait_for_log("reloaded the TLS certificate");
    server.write(b"after the reload\n");
    open.read_until_body_contains("data: after the reload")
        .await;

    let mut new = TlsClient::connect(&server, &renewed, None).await.unwrap();
    new.send(&stream_request("Last-Event-ID: 0\r\n")).await;
    new.read_until_body_contains("data: after the reload").await;
    assert!(
        TlsClient::connect(&server, &cert.cert_pem, None)
            .await
            .is_err()
    );
    server.write(b"both\n");
    open.read_until_body_contains("data: both").await;
    new.read_until_body_contains("data: both").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_lean_tls_stream_is_evicted_alone() {
    const EVENTS: usize = 5_000;
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &["--stall-timeout", "2s", "-q"]);
    // Sends its request, reads the head, then never reads again.
    let mut stalled = TlsClient::connect(&server, &cert.cert_pem, Some(4096))
        .await
        .unwrap();
    stalled.send(&stream_request("")).await;
    while stalled.head.is_none() {
        assert!(stalled.read_more().await.unwrap() > 0);
    }
    let mut reading = TlsClient::connect(&server, &cert.cert_pem, None)
        .await
        .unwrap();
    reading.send(&stream_request("")).await;
    server.wait_for_consumers(2).await;

    let line = format!("{}\n", "x".repeat(1000));
    let mut input = line.repeat(EVENTS - 1).into_bytes();
    input.extend_from_slice(b"last\n");
    let feeder = server.feed(input);
    reading.read_until_body_contains("data: last\n").await;
    feeder.join().unwrap();
    let data = body_data(&reading.body).await;
    assert_eq!(data.len(), EVENTS);
    assert_eq!(data[EVENTS - 1], "last");

    let stats = server.wait_for_stat("clients_dropped_stalled", 1).await;
    assert_eq!(stats["consumers"], 1, "{stats}");
    // What the kernel still held, then the end: the server closed it.
    loop {
        match stalled.read_more().await {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(!stalled.ended, "a stalled stream is cut, not ended"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_lean_tls_streams_with_their_last_chunk_and_close_notify() {
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &[]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = TlsClient::connect(&server, &cert.cert_pem, None)
            .await
            .unwrap();
        client.send(&stream_request("")).await;
        clients.push(client);
    }
    server.wait_for_consumers(3).await;
    server.write(b"before the end\n");
    server.wait_for_stat("events_sent", 1).await;
    server.terminate();
    for client in &mut clients {
        // A clean end: tokio-rustls reports an end without close_notify as an error.
        while client.read_more().await.expect("a clean TLS end") > 0 {}
        assert!(client.ended, "the last chunk: {:?}", client.raw);
        assert_eq!(body_data(&client.body).await, ["before the end"]);
    }
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
}
