//! What a browser gets from HTTPS with HTTP/2 and from `--auth`, in headless Chromium: a page
//! holding 10 EventSource connections to one origin receives every event on all of them over
//! HTTP/2, while over HTTP/1.1 the browser opens only 6 (the 7th waits, and so do the rest);
//! the built-in page behind `--auth` receives events with the credentials the browser was given.

use crate::common;

use common::browser::Browser;
use common::tls::{self, Http, TestCert};
use common::{Input, Server};

/// A page that opens `TABS` EventSources to `/events` and records what each receives.
const TABS_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>tabs</title>
<p id="state">open</p>
<script>
  window.sources = [];
  for (let i = 0; i < 10; i++) {
    const source = { stream: new EventSource('/events'), got: [] };
    source.stream.onmessage = (event) => source.got.push(event.data);
    window.sources.push(source);
  }
</script>
"#;
const TABS: usize = 10;
/// Chromium's limit of HTTP/1.1 connections per origin.
const HTTP1_CONNECTIONS: usize = 6;

const HELPERS: &str = "
    var opened = () => sources.filter((s) => s.stream.readyState === EventSource.OPEN).length;
    var received = () => sources.map((s) => s.got.join(','));
";
const SNAPSHOT: &str = "({ opened: opened(), received: received() })";

fn tabs_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), TABS_PAGE).unwrap();
    dir
}

fn tabs_browser(test: &str, flags: &[&str]) -> Option<Browser> {
    Browser::launch_with(test, flags).map(|browser| browser.scripted(HELPERS, SNAPSHOT, "true"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_streams_to_one_origin_all_receive_over_http2() {
    // The certificate is made for this test; the browser is told to accept it.
    let Some(mut browser) = tabs_browser(
        "ten_streams_to_one_origin_all_receive_over_http2",
        &["--ignore-certificate-errors"],
    ) else {
        return;
    };
    let cert = TestCert::new();
    let dir = tabs_dir();
    let mut args = cert.args();
    args.extend(["-d".into(), dir.path().display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Server::start_with(&args, Input::Pipe)
        .asking_with(tls::client(Some(&cert.cert_pem), Http::Alpn));
    browser.open(&server.url("/"));
    browser.wait_for("all 10 streams to open", "opened() === 10");
    server.wait_for_consumers(TABS as u64).await;
    server.write(b"one\ntwo\nthree\n");
    browser.wait_for(
        "every stream to receive every event",
        "received().every((got) => got === 'one,two,three')",
    );
    browser.assert_no_script_errors();
}

#[tokio::test(flavor = "multi_thread")]
async fn over_http1_the_seventh_stream_to_one_origin_waits() {
    let Some(mut browser) = tabs_browser("over_http1_the_seventh_stream_to_one_origin_waits", &[])
    else {
        return;
    };
    let dir = tabs_dir();
    let mut server = Server::piped(&["-d", dir.path().to_str().unwrap()]);
    browser.open(&server.url("/"));
    browser.wait_for("six streams to open", "opened() === 6");
    server.wait_for_consumers(HTTP1_CONNECTIONS as u64).await;
    // The browser holds the others back for as long as the six stay open: once the six have
    // every event (the sentinel), no other stream reached the server, and the others' tabs
    // received nothing. A browser that opened a seventh fails both counts.
    server.write(b"one\ntwo\nthree\n");
    browser.wait_for(
        "the six open streams to receive every event",
        "received().filter((got) => got === 'one,two,three').length === 6",
    );
    assert_eq!(server.stats().await["consumers"], HTTP1_CONNECTIONS);
    let page = browser.snapshot();
    let received = page["received"].as_array().unwrap();
    let starved = received.iter().filter(|got| *got == "").count();
    assert_eq!(starved, TABS - HTTP1_CONNECTIONS, "{page:#}");
    assert_eq!(page["opened"], HTTP1_CONNECTIONS, "{page:#}");
}

#[test]
fn the_page_behind_auth_receives_events_with_the_browsers_credentials() {
    let Some(mut browser) = Browser::launch(
        "the_page_behind_auth_receives_events_with_the_browsers_credentials",
    )
    .map(|browser| {
        browser.scripted(
            "var rows = () => document.querySelectorAll('#events > li').length;",
            "document.body.innerText",
            "document.getElementById('state') !== null",
        )
    }) else {
        return;
    };
    let mut command = std::process::Command::new(common::BIN);
    command
        .args(["--port", "0"])
        .env("SSE_BROADCAST_AUTH", "viewer:pass:word");
    let mut server = Server::spawn(command, Input::Pipe);
    // Credentials in the address, as a person types them once: the browser answers the 401
    // challenge with them and reuses them for the page's own EventSource.
    let address = server.base.replace("http://", "http://viewer:pass%3Aword@");
    browser.open(&format!("{address}/"));
    browser.wait_for(
        "the stream to open",
        "document.getElementById('state').textContent === 'open'",
    );
    server.write(b"behind the password\n");
    browser.wait_for("the event", "rows() === 1");
    let text = browser.eval("document.querySelector('#events .data').textContent");
    assert_eq!(text, "behind the password");
}
