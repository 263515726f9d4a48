//! A reconnect storm: thousands of clients connect at once, over TLS and over plain TCP, to a
//! server pinned to one core, beside sockets that connect and send nothing. Every honest client
//! gets its stream (handshakes wait their turn in line; a handshake's time-out runs from its
//! start, not from accept), and the silent sockets, which hold no handshake slot, are closed.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::tls::{Http, TestCert};
use common::{Input, Server, WAIT};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Sized for a 2-core CI machine running a debug build; the benchmark runs 10,000.
const CLIENTS: usize = 2000;
const SILENT: usize = 500;
/// Generous: the whole storm, every handshake in line behind the others, on one core.
const STORM_WAIT: Duration = Duration::from_secs(120);

/// One storm at a time: two at once would share the cores and measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `sse-broadcast` on one core (`taskset`), as in the storm the issue describes.
fn one_core_server(args: &[String]) -> Server {
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0", common::BIN, "--port", "0", "--retry", "2s", "-q"])
        .args(args)
        // The clients share this machine's two cores with the server, and a debug build of
        // rustls on the client's side is slow: a client may take longer than the default 10 s
        // to answer its server's flight. The line is what is tested, not the client's speed.
        .env("SSE_BROADCAST_TEST_TIMEOUTS", "handshake=60s");
    Server::spawn(command, Input::Null)
}

async fn storm(server: &Server, http: reqwest::Client) {
    // The silent sockets come first: whatever they could hold, they hold before the storm.
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        silent.push(TcpStream::connect(server.address()).await.unwrap());
    }
    let url = server.url("/events");
    let clients = (0..CLIENTS).map(|_| {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let response = http.get(&url).send().await.expect("the stream's head");
            assert_eq!(response.status(), 200);
            let mut body = response.bytes_stream();
            let first = body.next().await.expect("a first frame").unwrap();
            assert!(first.starts_with(b"retry: "), "{first:?}");
            body // kept open until every client has its stream
        })
    });
    let streams = tokio::time::timeout(STORM_WAIT, futures_util::future::join_all(clients))
        .await
        .expect("every client has its stream");
    let streams: Vec<_> = streams.into_iter().map(Result::unwrap).collect();
    assert_eq!(streams.len(), CLIENTS);
    server.wait_for_consumers(CLIENTS as u64).await;

    for mut socket in silent {
        let mut byte = [0; 1];
        let read = tokio::time::timeout(WAIT, socket.read(&mut byte))
            .await
            .expect("a silent socket is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_storm_beside_silent_sockets_gets_every_stream() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let cert = TestCert::new();
    let server = one_core_server(&cert.args());
    // HTTP/1.1: reqwest opens a connection (and a handshake) for each stream still open.
    let http = common::tls::client(Some(&cert.cert_pem), Http::Http1);
    let server = server.asking_with(http.clone());
    storm(&server, http).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_storm_beside_silent_sockets_gets_every_stream() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = one_core_server(&[]);
    storm(&server, reqwest::Client::new()).await;
}
