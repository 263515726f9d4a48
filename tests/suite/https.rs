//! HTTPS with ALPN (HTTP/2 and HTTP/1.1 on one port), h2c on a plain port, certificate reload on
//! SIGHUP, and the stream guarantees over HTTP/2: exact events, replay, `--max-clients`, and
//! shutdown ending every stream of a shared connection. Real clients: reqwest over rustls (and
//! over HTTP/2 with prior knowledge), events parsed by eventsource-stream.

use crate::common;

use common::tls::{self, Http, TestCert};
use common::{Server, data, ids};
use reqwest::Version;

#[tokio::test(flavor = "multi_thread")]
async fn https_speaks_http2_and_http1_on_one_port() {
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &["--wait-clients", "2"]);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let url = server.url("/events");
    let h2 = tls::client(Some(&cert.cert_pem), Http::Alpn);
    let h1 = tls::client(Some(&cert.cert_pem), Http::Http1);
    let mut over_h2 = tls::events(&h2, &url, &[], Version::HTTP_2).await;
    let mut over_h1 = tls::events(&h1, &url, &[], Version::HTTP_11).await;
    assert_eq!(
        over_h2.response_headers["content-type"],
        "text/event-stream"
    );
    assert_eq!(over_h2.response_headers["cache-control"], "no-cache");
    assert_eq!(over_h2.response_headers["x-accel-buffering"], "no");
    server.write("first\n  spaced: not a field\r\nünïcödé ✓\n".as_bytes());
    for client in [&mut over_h2, &mut over_h1] {
        let events = client.take(3).await;
        assert_eq!(ids(&events), ["1", "2", "3"]);
        assert_eq!(
            data(&events),
            ["first", "  spaced: not a field", "ünïcödé ✓"]
        );
    }
    // The page and /stats come over TLS too; a client that does not trust the certificate
    // gets no answer at all.
    let page = tls::get(&h2, &server.url("/"), &[]).await;
    assert_eq!(
        (page.status().as_u16(), page.version()),
        (200, Version::HTTP_2)
    );
    let untrusting = tls::client(None, Http::Alpn);
    assert!(untrusting.get(server.url("/stats")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_port_serves_h2c_and_http1() {
    let mut server = Server::piped(&["--wait-clients", "2"]);
    let url = server.url("/events");
    let h2c = tls::client(None, Http::H2c);
    let mut over_h2c = tls::events(&h2c, &url, &[], Version::HTTP_2).await;
    let mut over_h1 = tls::events(&reqwest::Client::new(), &url, &[], Version::HTTP_11).await;
    server.write(b"one\ntwo\n");
    for client in [&mut over_h2c, &mut over_h1] {
        let events = client.take(2).await;
        assert_eq!(ids(&events), ["1", "2"]);
        assert_eq!(data(&events), ["one", "two"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_and_max_clients_hold_per_http2_stream() {
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &["--max-clients", "2", "--history", "10"]);
    let h2 = tls::client(Some(&cert.cert_pem), Http::Alpn);
    let url = server.url("/events");
    let mut first = tls::events(&h2, &url, &[], Version::HTTP_2).await;
    server.write(b"a\nb\nc\n");
    assert_eq!(data(&first.take(3).await), ["a", "b", "c"]);

    // A second stream on the same connection resumes after id 1.
    let mut resumed = tls::events(&h2, &url, &[("last-event-id", "1")], Version::HTTP_2).await;
    assert_eq!(ids(&resumed.take(2).await), ["2", "3"]);

    // The third stream is over --max-clients: 503, and the other two go on.
    let refused = tls::get(&h2, &url, &[]).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    server.write(b"d\n");
    assert_eq!(first.next().await.data, "d");
    assert_eq!(resumed.next().await.data, "d");
    let stats = server.stats().await;
    assert_eq!(stats["consumers"], 2, "{stats}");
    assert_eq!(stats["requests_refused"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_loads_a_renewed_certificate_and_keeps_open_streams() {
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &[]);
    let url = server.url("/events");
    let old_client = tls::client(Some(&cert.cert_pem), Http::Alpn);
    let mut open = tls::events(&old_client, &url, &[], Version::HTTP_2).await;
    server.wait_for_consumers(1).await;

    let renewed = cert.renew();
    server.signal("HUP");
    server.wait_for_log("reloaded the TLS certificate");
    // A new connection is served with the new certificate: a client trusting only the new one
    // connects, one trusting only the old one is refused.
    let new_client = tls::client(Some(&renewed), Http::Alpn);
    let page = tls::get(&new_client, &server.url("/stats"), &[]).await;
    assert_eq!(page.status(), 200);
    let only_old = tls::client(Some(&cert.cert_pem), Http::Alpn);
    assert!(only_old.get(server.url("/stats")).send().await.is_err());

    // The stream opened before the reload goes on.
    server.write(b"after the reload\n");
    assert_eq!(open.next().await.data, "after the reload");

    // A bad pair is refused and the current one stays.
    std::fs::write(cert.key_path(), "not a key").unwrap();
    server.signal("HUP");
    let log = server.wait_for_log("keeping the current certificate");
    assert!(log.contains("--tls-key"), "{log}");
    let still = tls::get(&new_client, &server.url("/stats"), &[]).await;
    assert_eq!(still.status(), 200);
    assert!(server.is_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_every_http2_stream_and_exits_0() {
    let cert = TestCert::new();
    let mut server = tls::server(&cert, &[]);
    let h2 = tls::client(Some(&cert.cert_pem), Http::Alpn);
    let url = server.url("/events");
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(tls::events(&h2, &url, &[], Version::HTTP_2).await);
    }
    server.wait_for_consumers(5).await;
    server.write(b"last\n");
    // The line is in the channel before the signal (stdin may be read after it otherwise).
    server.wait_for_stat("events_sent", 1).await;
    server.terminate();
    for stream in &mut streams {
        assert_eq!(data(&stream.until_end().await), ["last"]);
    }
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn tls_files_are_checked_at_start() {
    use assert_cmd::prelude::*;
    use predicates::prelude::*;
    use std::process::Command;

    let cert = TestCert::new();
    let cert_path = cert.cert_path().display().to_string();
    let key_path = cert.key_path().display().to_string();
    let run = |args: &[&str]| {
        let mut command = Command::new(common::BIN);
        command.args(["--port", "0", "-i", "1s"]).args(args);
        command.assert()
    };
    // Both or neither: a usage error.
    run(&["--tls-cert", &cert_path])
        .code(2)
        .stderr(predicate::str::contains("--tls-key"));
    run(&["--tls-key", &key_path])
        .code(2)
        .stderr(predicate::str::contains("--tls-cert"));

    // A file that is missing, not PEM, or a key of another certificate: one line naming it.
    let one_line = |text: &str| text.trim_end().lines().count() == 1;
    run(&[
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        &key_path,
    ])
    .code(1)
    .stderr(predicate::str::contains(
        "/nonexistent/cert.pem (--tls-cert)",
    ))
    .stderr(predicate::str::contains("No such file"))
    .stderr(predicate::function(one_line));
    let other = TestCert::new();
    let other_key = other.key_path().display().to_string();
    run(&["--tls-cert", &cert_path, "--tls-key", &other_key])
        .code(1)
        .stderr(predicate::str::contains("does not match"))
        .stderr(predicate::str::contains(format!("{other_key} (--tls-key)")))
        .stderr(predicate::function(one_line));
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let garbage = garbage.display().to_string();
    run(&["--tls-cert", &garbage, "--tls-key", &key_path])
        .code(1)
        .stderr(predicate::str::contains(format!("{garbage} (--tls-cert)")))
        .stderr(predicate::function(one_line));
    run(&["--tls-cert", &cert_path, "--tls-key", &garbage])
        .code(1)
        .stderr(predicate::str::contains(format!("{garbage} (--tls-key)")))
        .stderr(predicate::function(one_line));
}
