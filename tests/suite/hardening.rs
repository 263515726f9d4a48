//! Attacks from outside against the real binary, each one a finding of a security review, each
//! with what it costs the server read from the process itself (CPU time from /proc/PID/stat,
//! RSS and peak RSS from /proc/PID/status), never from the wall clock: a loaded machine slows
//! the test, not the figure. Thresholds are far from both sides: what the fix allows and what
//! the attack cost before it.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::tls::{self, Http};
use common::{Server, TcpClient, WAIT, cpu_time, server_address};
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "a test secret of 32 bytes or more";
/// How far past its `exp` a token is still taken (docs/private-channels.md).
const LEEWAY: f64 = 30.0;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A token reading every channel that the server takes for `seconds` more (its `exp` that
/// far ahead, less the leeway), and the instant it stops taking it.
fn token_valid_for(seconds: f64) -> (String, Instant) {
    let exp = unix_now() + seconds - LEEWAY;
    let claims = json!({"exp": exp, "sse_broadcast": {"subscribe": ["*"]}});
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    (token, Instant::now() + Duration::from_secs_f64(seconds))
}

/// Feeds `server`'s stdin 200-byte lines as fast as it reads them, until it goes away.
fn flood_stdin(server: &mut Server) -> std::thread::JoinHandle<()> {
    let mut stdin = server.take_stdin();
    std::thread::spawn(move || {
        let line = format!("{}\n", "x".repeat(199));
        let block = line.repeat(64);
        while stdin.write_all(block.as_bytes()).is_ok() {}
    })
}

/// A reader of a busy stream slower than its input (4 KiB every 10 ms, as in the review): the
/// stream must still end with `: token expired` soon after the token stops being valid, on each
/// path and for one channel or several. Before the fix a stream of several channels never
/// reached its expiry timer: it always had a batch ready.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_stream_ends_when_its_token_does() {
    const VALID: f64 = 3.0;
    /// From the token's end to the stream's: the kernel's socket buffers drain at the reader's
    /// pace meanwhile, which takes a few seconds at 400 KB/s.
    const GRACE: Duration = Duration::from_secs(20);
    let mut server = Server::piped(&["--jwt-secret", SECRET]);
    let _flood = flood_stdin(&mut server);
    let (token, ends) = token_valid_for(VALID);
    let mut readers = Vec::new();
    for path in ["/events", "/events/default,x"] {
        let url = format!("{path}?access_token={token}");
        let mut lean = TcpClient::get(&server, &url, None);
        readers.push(tokio::task::spawn_blocking(move || {
            let mut at_end = None;
            loop {
                if at_end.is_none() && Instant::now() >= ends {
                    at_end = Some(lean.body.len());
                }
                assert!(
                    Instant::now() < ends + GRACE,
                    "lean {path}: still open {GRACE:?} after the token ended, {} bytes later",
                    lean.body.len() - at_end.unwrap_or(0)
                );
                match lean.read_some(4096) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            let after = lean.body.len() - at_end.unwrap_or(lean.body.len());
            (
                format!("lean {path}"),
                lean.body.ends_with(b": token expired\n\n"),
                after,
            )
        }));
        let h2c = tls::client(None, Http::H2c);
        let response = tls::get(&h2c, &server.url(&url), &[]).await;
        assert_eq!(response.status(), 200, "h2c {path}");
        readers.push(tokio::spawn(async move {
            let _client = h2c; // its connection lives as long as it
            let mut body = response.bytes_stream();
            let (mut read, mut at_end, mut tail) = (0, None, Vec::new());
            loop {
                if at_end.is_none() && Instant::now() >= ends {
                    at_end = Some(read);
                }
                assert!(
                    Instant::now() < ends + GRACE,
                    "h2c {path}: still open {GRACE:?} after the token ended, {} bytes later",
                    read - at_end.unwrap_or(0)
                );
                match tokio::time::timeout(WAIT, body.next()).await {
                    Ok(Some(Ok(chunk))) => {
                        read += chunk.len();
                        tail.extend_from_slice(&chunk);
                        tail.drain(..tail.len().saturating_sub(64));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(err))) => panic!("h2c {path}: {err:?}"),
                    Err(_) => panic!("h2c {path}: nothing for {WAIT:?}"),
                }
            }
            let after = read - at_end.unwrap_or(read);
            (
                format!("h2c {path}"),
                tail.ends_with(b": token expired\n\n"),
                after,
            )
        }));
    }
    for reader in readers {
        let (how, expired, after) = reader.await.unwrap();
        eprintln!("{how}: {after} bytes after the token ended");
        assert!(
            expired,
            "{how}: the stream did not end with `: token expired`"
        );
    }
}

/// Sends `head` on a new connection and returns the status line of its answer.
fn status_of(server: &Server, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(server_address(server)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(head).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    while !answer.windows(2).any(|pair| pair == b"\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or_default().to_owned()
}

/// `GET /events/` with 15,000 distinct 3-character names (a 60 KB head): refused 404 as
/// soon as the list is known to be longer than 16 names, before any name is read. Before the
/// fix every name was parsed and compared with every other, before the count was tested and
/// before any token was asked for: the cost grew with the square of the count.
#[test]
fn a_long_channel_list_costs_no_more_than_its_length() {
    const REQUESTS: u32 = 4;
    const BOUND: Duration = Duration::from_millis(500);
    let server = Server::start(&["--jwt-secret", SECRET, "--interval", "1h"]);
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let names: Vec<String> = (0..15_000)
        .map(|n| {
            let pick = |at: usize| digits[(n / at) % 36] as char;
            format!("{}{}{}", pick(1296), pick(36), pick(1))
        })
        .collect();
    let head = format!(
        "GET /events/{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        names.join(",")
    );
    assert!(head.len() > 60_000);
    // One first, so that what starting up costs is not counted.
    assert_eq!(
        status_of(
            &server,
            b"GET /events/a,b,a HTTP/1.1\r\nHost: localhost\r\n\r\n"
        ),
        "HTTP/1.1 404 Not Found"
    );
    let before = cpu_time(server.pid());
    for _ in 0..REQUESTS {
        assert_eq!(
            status_of(&server, head.as_bytes()),
            "HTTP/1.1 404 Not Found"
        );
    }
    let spent = cpu_time(server.pid()) - before;
    eprintln!("{REQUESTS} heads of 15,000 names: {spent:?} of CPU");
    assert!(
        spent < BOUND,
        "{REQUESTS} heads of 15,000 names took {spent:?} of CPU"
    );
}

/// With 16 MiB kept on a channel (1,000 events of 16 KiB), 20 streams of it and another
/// channel ask for `earliest` and never read. A stream shares the kept frames and copies only
/// the batch it is writing; before the fix each copied the whole history to rewrite ids, and
/// 20 such requests took RSS from 53 to 822 MiB in the review.
#[tokio::test]
async fn replaying_several_channels_copies_no_history() {
    const STREAMS: usize = 20;
    const BOUND_KIB: u64 = 96 * 1024;
    let mut server = Server::piped(&[]);
    let line = format!("{}\n", "h".repeat(16 * 1024 - 1));
    let _input = server.feed(line.repeat(1000).into_bytes());
    server.wait_for_log("sent id=1000 ");
    let (rss, peak) = (server.rss_kib(), server.status_kib("VmHWM"));
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let mut stream = TcpClient::get(
            &server,
            "/events/default,b?lastEventId=earliest",
            Some(4096),
        );
        while stream.head.is_none() {
            assert!(stream.read_some(1024).unwrap() > 0, "the stream ended");
        }
        streams.push(stream);
    }
    let grew = server.rss_kib().saturating_sub(rss);
    let peak_grew = server.status_kib("VmHWM").saturating_sub(peak);
    eprintln!("{STREAMS} replaying streams: RSS +{grew} KiB, peak RSS +{peak_grew} KiB");
    assert!(
        grew < BOUND_KIB && peak_grew < BOUND_KIB,
        "RSS +{grew} KiB, peak +{peak_grew} KiB"
    );
}

/// A POST of 1 MiB of `a` lines (the default --max-body): 524,288 events. They are decoded
/// and published a few at a time, so the request holds little more than its body; before the
/// fix every event was decoded first (`Vec<Event>`), and the peak RSS of one such POST went
/// from 7 to 93 MiB in the review.
#[tokio::test]
async fn a_post_of_short_lines_costs_a_small_multiple_of_its_size() {
    const BOUND_KIB: u64 = 24 * 1024;
    let server = Server::piped(&["--publish-token", "a-publish-token", "-q"]);
    let body = "a\n".repeat(512 * 1024);
    let warm = server
        .post(
            "/events",
            &[("authorization", "Bearer a-publish-token")],
            "warm\n",
        )
        .await;
    assert_eq!(warm.status, 200);
    let peak = server.status_kib("VmHWM");
    let answer = server
        .post(
            "/events",
            &[("authorization", "Bearer a-publish-token")],
            body,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["events"], 512 * 1024);
    let grew = server.status_kib("VmHWM").saturating_sub(peak);
    eprintln!("a POST of 524,288 short lines: peak RSS +{grew} KiB");
    assert!(grew < BOUND_KIB, "peak RSS +{grew} KiB");
}
