//! Request heads are capped at 64 KiB (docs/security.md): a head of 65,536 bytes is served and
//! one byte more is answered 431, whether it comes in one write or in 4 KiB pieces, as the first
//! request of a connection (which the lean path reads first) or a later one (hyper alone); an
//! HTTP/2 header list likewise, counted as HTTP/2 counts it.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Server, WAIT};

const LIMIT: usize = 64 * 1024;
/// Sizes around the limit, and past where a head in one write used to be served.
const SIZES: [(usize, u16); 4] = [
    (LIMIT, 200),
    (LIMIT + 1, 431),
    (98_349, 431),
    (200_000, 431),
];

/// `GET /stats` with a padding field, exactly `size` bytes long.
fn head(server: &Server, size: usize) -> Vec<u8> {
    let start = format!(
        "GET /stats HTTP/1.1\r\nHost: {}\r\nX-Padding: ",
        server.address()
    );
    let pad = size - start.len() - "\r\n\r\n".len();
    format!("{start}{}\r\n\r\n", "a".repeat(pad)).into_bytes()
}

/// Writes `request` in pieces of `piece` bytes (from a thread: the server may stop reading and
/// answer before the last piece, and a refused write is no failure here), then reads one whole
/// response and returns its status.
fn send(stream: &mut TcpStream, request: Vec<u8>, piece: usize) -> u16 {
    let mut writer = stream.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        for bytes in request.chunks(piece) {
            if writer.write_all(bytes).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let status = read_response(stream);
    writing.join().unwrap();
    status
}

/// Reads a response head and its `Content-Length` body; returns the status.
fn read_response(stream: &mut TcpStream) -> u16 {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut read = Vec::new();
    let mut buffer = [0; 4096];
    let end = loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream
            .read(&mut buffer)
            .unwrap_or_else(|err| panic!("no response head ({err}); read {read:?}"));
        assert!(n > 0, "closed before a response head: {read:?}");
        read.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&read[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |value| value.trim().parse().unwrap());
    while read.len() < end + length {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "closed inside the body: {head}");
        read.extend_from_slice(&buffer[..n]);
    }
    head[9..12].parse().unwrap()
}

#[test]
fn a_first_head_over_64_kib_is_refused_in_one_write_or_in_pieces() {
    let server = Server::start(&["-i", "1h"]);
    for piece in [usize::MAX, 4096] {
        for (size, expected) in SIZES {
            let mut stream = TcpStream::connect(server.address()).unwrap();
            stream.set_nodelay(true).unwrap();
            let status = send(&mut stream, head(&server, size), piece);
            assert_eq!(
                status, expected,
                "a first head of {size} bytes in pieces of {piece}"
            );
        }
    }
}

#[test]
fn a_later_head_over_64_kib_is_refused_in_one_write_or_in_pieces() {
    let server = Server::start(&["-i", "1h"]);
    for piece in [usize::MAX, 4096] {
        for (size, expected) in SIZES {
            let mut stream = TcpStream::connect(server.address()).unwrap();
            stream.set_nodelay(true).unwrap();
            assert_eq!(send(&mut stream, head(&server, 100), usize::MAX), 200);
            let status = send(&mut stream, head(&server, size), piece);
            assert_eq!(
                status, expected,
                "a second head of {size} bytes in pieces of {piece}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_header_list_over_64_kib_is_refused() {
    let server = Server::start(&["-i", "1h"]);
    let address = server.address();
    let socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (client, connection) = h2::client::handshake(socket).await.unwrap();
    tokio::spawn(connection);
    // HTTP/2 counts each field as its name, its value and 32 bytes, pseudo-fields included.
    let fields = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", address.as_str()),
        (":path", "/stats"),
    ];
    let base: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
    let padded = |size: usize| {
        let pad = size - base - "x-padding".len() - 32;
        http::Request::get(format!("http://{address}/stats"))
            .header("x-padding", "a".repeat(pad))
            .body(())
            .unwrap()
    };
    for (size, expected) in [(LIMIT, 200), (LIMIT + 1, 431), (100_000, 431)] {
        let mut client = client.clone().ready().await.unwrap();
        let (response, _) = client.send_request(padded(size), true).unwrap();
        let response = tokio::time::timeout(WAIT, response)
            .await
            .expect("an answer in time")
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            expected,
            "a header list of {size} bytes"
        );
    }
    // A header block far past the limit, in more frames than 64 KiB needs, is a flood: h2 ends
    // the connection rather than decode it to answer it.
    let mut client = client.ready().await.unwrap();
    let (response, _) = client.send_request(padded(400_000), true).unwrap();
    let ended = tokio::time::timeout(WAIT, response)
        .await
        .expect("an end in time");
    assert!(ended.is_err(), "a header list of 400,000 bytes: {ended:?}");
}
