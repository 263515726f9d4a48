//! `listen` and what guards a stream (DESIGN §15): TLS with `--cacert` (HTTP/2 by ALPN) and a
//! certificate that does not verify (exit 1 at once); `--token`, `--user` and `-H` sent as
//! asked and never shown, in a log line (even at trace level) or a usage error.

use crate::common;

use std::process::Command;

use base64::Engine as _;
use common::listener::{Listener, Scripted, header, records, status_answer};
use common::tls::TestCert;
use common::{BIN, Server};

const SECRET: &str = "hunter2-s3cret";

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_cacert_and_a_certificate_that_does_not_verify() {
    let cert = TestCert::new();
    let mut args: Vec<String> = cert.args();
    args.extend(["--stdin".into(), "-q".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::piped(&args);
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let mut server_asks = server.asking_with(http);
    let url = server_asks.url("/events");
    let cacert = cert.cert_path().display().to_string();
    let mut trusted = Listener::start(&["-q", "-n", "1", "--cacert", &cacert, &url]);
    server_asks.wait_for_consumers(1).await;
    server_asks.write(b"over TLS\n");
    trusted.expect_exit(0);
    assert_eq!(records(&trusted.stdout(), b'\n'), ["over TLS"]);

    // The system's roots do not hold the test's certificate: a configuration error, not retried.
    let mut untrusted = Listener::start(&[&url]);
    untrusted.expect_exit(1);
    let log = untrusted.stderr();
    assert!(
        log.contains(&format!(
            "sse-broadcast: {url}: the server's certificate does not verify"
        )),
        "{log}"
    );
    assert!(!log.contains("reconnecting"), "{log}");

    let mut not_pem = Listener::start(&["--cacert", "/dev/null", &url]);
    not_pem.expect_exit(1);
    assert!(
        not_pem
            .stderr()
            .contains("--cacert /dev/null: no PEM certificate in it")
    );
}

#[test]
fn credentials_are_sent_and_never_shown() {
    let server = Scripted::start(|_, _| status_answer("401 Unauthorized", ""));
    let url = server.url("/events");

    let mut bearer = Listener::start(&["-vv", "--token", SECRET, &url]);
    bearer.expect_exit(3);
    let heads = server.heads();
    assert_eq!(
        header(&heads[0], "authorization"),
        Some(&*format!("Bearer {SECRET}"))
    );

    // From the environment, with every log line the HTTP stack can write.
    let mut command = Command::new(BIN);
    command
        .args(["listen", "-vv", "-H", &format!("X-Key: {SECRET}"), &url])
        .env("SSE_BROADCAST_LISTEN_USER", format!("me:{SECRET}"))
        .env("RUST_LOG", "trace");
    let mut basic = Listener::spawn(command);
    basic.expect_exit(3);
    let heads = server.heads();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("me:{SECRET}"));
    assert_eq!(
        header(&heads[1], "authorization"),
        Some(&*format!("Basic {encoded}"))
    );
    assert_eq!(header(&heads[1], "x-key"), Some(SECRET));

    for listener in [&bearer, &basic] {
        let log = listener.stderr();
        assert!(
            log.contains("401 Unauthorized (check --token, --user or -H)"),
            "{log}"
        );
        assert!(
            !log.contains(SECRET) && !log.contains(&encoded),
            "a secret leaked: {log}"
        );
    }
}

#[test]
fn usage_errors_never_show_a_secret() {
    for args in [
        vec![
            "listen",
            "--token",
            "hunter2",
            "s3cret",
            "http://127.0.0.1:1/",
        ],
        vec![
            "listen",
            "--user",
            "me",
            "hunter2-s3cret",
            "http://127.0.0.1:1/",
        ],
        vec![
            "listen",
            "-H",
            "Authorization hunter2-s3cret",
            "http://127.0.0.1:1/",
        ],
        vec![
            "listen",
            "--token",
            "hunter2-s3cret",
            "--user",
            "me:pw",
            "http://h/",
        ],
        vec!["listen", "--token=", "http://h/"],
    ] {
        let output = Command::new(BIN).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{args:?}: {stderr}");
    }
}
