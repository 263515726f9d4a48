//! The HTTP routes of the real binary: the stream's headers, `/stats`, 404s, `--events-path`,
//! `--static-dir` (and that no request reaches a file outside it), `--cors`, the built-in page.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Server, WAIT, within};

/// A response read off the socket as the server wrote it.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Sends `GET TARGET` byte for byte over a plain TCP connection, so nothing normalises the path.
fn raw_get(server: &Server, target: &str) -> RawResponse {
    let address = server.base.strip_prefix("http://").unwrap();
    let mut socket = TcpStream::connect(address).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket.set_write_timeout(Some(WAIT)).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    socket
        .read_to_end(&mut response)
        .unwrap_or_else(|err| panic!("reading the answer to {target}: {err}"));
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    RawResponse {
        status,
        head,
        body: response[split + 4..].to_vec(),
    }
}

async fn get(server: &Server, path: &str) -> reqwest::Response {
    tokio::time::timeout(WAIT, reqwest::get(server.url(path)))
        .await
        .expect("an answer in time")
        .unwrap()
}

async fn get_text(server: &Server, path: &str) -> (reqwest::StatusCode, String) {
    let response = get(server, path).await;
    let status = response.status();
    let body = within(&format!("body of {path}"), response.text()).await;
    (status, body.unwrap())
}

#[tokio::test]
async fn events_has_the_stream_headers() {
    let server = Server::start(&["-i", "1s"]);
    let client = server.events("/events").await;
    assert_eq!(client.status, 200);
    let header = |name: &str| {
        client
            .response_headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name}: {:?}", client.response_headers))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/event-stream");
    assert_eq!(header("cache-control"), "no-cache");
    assert_eq!(header("x-accel-buffering"), "no");
}

#[tokio::test]
async fn stats_reports_counters_and_history() {
    let mut server = Server::piped(&["--stdin", "--history", "2"]);
    let stats = server.stats().await;
    for field in [
        "consumers",
        "events_sent",
        "uptime_secs",
        "version",
        "history_size",
        "oldest_id",
        "newest_id",
    ] {
        assert!(stats.get(field).is_some(), "no {field}: {stats}");
    }
    assert_eq!(stats["consumers"], 0);
    assert_eq!(stats["events_sent"], 0);
    assert_eq!(stats["history_size"], 0);
    assert!(
        stats["oldest_id"].is_null() && stats["newest_id"].is_null(),
        "{stats}"
    );
    assert!(stats["uptime_secs"].is_u64(), "{stats}");
    assert_eq!(stats["version"], env!("CARGO_PKG_VERSION"));

    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    server.write(b"a\nb\nc\n");
    assert_eq!(client.take(3).await.len(), 3);
    let stats = server.stats().await;
    assert_eq!(stats["consumers"], 1, "{stats}");
    assert_eq!(stats["events_sent"], 3, "{stats}");
    // --history 2 keeps the last two.
    assert_eq!(stats["history_size"], 2, "{stats}");
    assert_eq!(stats["oldest_id"], "2", "{stats}");
    assert_eq!(stats["newest_id"], "3", "{stats}");

    let response = get(&server, "/stats").await;
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = Server::start(&["-i", "1s"]);
    // `/events/NAME` is a channel (tests/suite/channels.rs); a path that names none is not found.
    for path in [
        "/events/extra/more",
        "/events/.extra",
        "/eventsx",
        "/nope",
        "/index.html",
        "/stats/more",
    ] {
        let (status, _) = get_text(&server, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn events_path_moves_the_stream() {
    let server = Server::start(&["-i", "100ms", "--events-path", "/stream/live"]);
    let mut client = server.events("/stream/live").await;
    assert_eq!(client.status, 200);
    assert_eq!(client.response_headers["content-type"], "text/event-stream");
    let event = client.next().await;
    assert!(event.data.starts_with("hello, now is: "), "{event:?}");
    for path in ["/events", "/stream", "/stream/live/x/y", "/stream/livex"] {
        let (status, _) = get_text(&server, path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = get_text(&server, "/stats").await;
    assert_eq!(status, 200);
}

/// A site directory with an index, a nested file, and a secret beside (outside) it.
struct Site {
    root: tempfile::TempDir,
}

const SECRET: &str = "SECRET-OUTSIDE-THE-SITE";

impl Site {
    fn new() -> Site {
        let root = tempfile::tempdir().unwrap();
        let www = root.path().join("www");
        std::fs::create_dir_all(www.join("css")).unwrap();
        std::fs::write(www.join("index.html"), "<h1>my site</h1>").unwrap();
        std::fs::write(www.join("css/app.css"), "body { color: red }").unwrap();
        std::fs::write(root.path().join("secret.txt"), SECRET).unwrap();
        Site { root }
    }

    fn www(&self) -> String {
        self.root.path().join("www").to_str().unwrap().to_owned()
    }

    fn secret_path(&self) -> String {
        self.root
            .path()
            .join("secret.txt")
            .to_str()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn static_dir_serves_files_and_its_index_at_the_root() {
    let site = Site::new();
    let server = Server::start(&["-i", "1s", "--static-dir", &site.www()]);
    let response = get(&server, "/").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(response.text().await.unwrap(), "<h1>my site</h1>");
    let (status, body) = get_text(&server, "/index.html").await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "<h1>my site</h1>"));
    let (status, body) = get_text(&server, "/css/app.css").await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (200, "body { color: red }")
    );
    let (status, _) = get_text(&server, "/missing.html").await;
    assert_eq!(status, 404);
    // The stream and the stats stay where they are.
    let client = server.events("/events").await;
    assert_eq!(client.status, 200);
    assert_eq!(server.stats().await["consumers"], 1);
}

#[tokio::test]
async fn static_dir_never_serves_a_file_outside_it() {
    let site = Site::new();
    let server = Server::start(&["-i", "1s", "--static-dir", &site.www()]);
    // The sanity check: the same connection code does fetch a file inside.
    let inside = raw_get(&server, "/css/app.css");
    assert_eq!(inside.status, 200, "{}", inside.head);
    assert_eq!(inside.body, b"body { color: red }");

    let secret = site.secret_path();
    let secret_no_slash = secret.trim_start_matches('/');
    let encoded_secret = secret_no_slash.replace('/', "%2f");
    let targets = [
        "/../secret.txt".to_owned(),
        "/css/../../secret.txt".to_owned(),
        "/%2e%2e/secret.txt".to_owned(),
        "/%2E%2E/secret.txt".to_owned(),
        "/..%2fsecret.txt".to_owned(),
        "/%2e%2e%2fsecret.txt".to_owned(),
        "/css/..%2f..%2fsecret.txt".to_owned(),
        "/css/%2e%2e/%2e%2e/secret.txt".to_owned(),
        "/..%5csecret.txt".to_owned(),
        "/..\\secret.txt".to_owned(),
        "/.%2e/secret.txt".to_owned(),
        "/%252e%252e/secret.txt".to_owned(),
        format!("/{secret_no_slash}"),
        format!("/{secret}"),
        format!("/%2f{encoded_secret}"),
        format!("//{secret_no_slash}"),
        "/etc/passwd".to_owned(),
        "//etc/passwd".to_owned(),
        "/%2fetc%2fpasswd".to_owned(),
        "/../../../../../../etc/passwd".to_owned(),
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd".to_owned(),
    ];
    for target in &targets {
        let response = raw_get(&server, target);
        let body = String::from_utf8_lossy(&response.body);
        assert!(
            !body.contains(SECRET) && !body.contains("root:"),
            "{target} served a file outside the dir: {} {body}",
            response.head
        );
        // Exactly "not found": an error of the server's (a 500) is no refusal.
        assert_eq!(response.status, 404, "{target}: {}", response.head);
    }
    // The server is unharmed.
    assert_eq!(raw_get(&server, "/").status, 200);
}

#[tokio::test]
async fn cors_allows_the_named_origin_only() {
    let server = Server::start(&["-i", "1s", "--cors", "https://a.example"]);
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, server.url("/events"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "last-event-id")
            .send()
    };
    let allowed = tokio::time::timeout(WAIT, preflight("https://a.example"))
        .await
        .unwrap()
        .unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://a.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("GET"), "{methods}");

    let refused = tokio::time::timeout(WAIT, preflight("https://b.example"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        refused.headers()
    );

    // A plain GET from the allowed origin gets the header, on the stream and on /stats.
    let client = server
        .events_with("/events", &[("origin", "https://a.example")])
        .await;
    assert_eq!(client.status, 200);
    assert_eq!(
        client.response_headers["access-control-allow-origin"],
        "https://a.example"
    );
    let stats = tokio::time::timeout(
        WAIT,
        http.get(server.url("/stats"))
            .header("origin", "https://a.example")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        stats.headers()["access-control-allow-origin"],
        "https://a.example"
    );

    // Another origin gets no allow-origin header.
    let other = tokio::time::timeout(
        WAIT,
        http.get(server.url("/stats"))
            .header("origin", "https://b.example")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        other.headers()
    );
}

#[tokio::test]
async fn without_cors_no_allow_origin_header_is_sent() {
    let server = Server::start(&["-i", "1s"]);
    let client = server
        .events_with("/events", &[("origin", "https://a.example")])
        .await;
    assert_eq!(client.status, 200);
    assert!(
        client
            .response_headers
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn the_built_in_page_is_html() {
    let server = Server::start(&["-i", "1s"]);
    let response = get(&server, "/").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = response.text().await.unwrap();
    assert!(
        body.trim_start()
            .to_ascii_lowercase()
            .starts_with("<!doctype html"),
        "{body}"
    );
    assert!(body.contains("EventSource"), "{body}");
}

#[tokio::test]
async fn a_finite_route_answers_while_a_stream_is_open() {
    let server = Server::start(&["-i", "100ms"]);
    let mut client = server.events("/events").await;
    client.next().await;
    // Each answer is awaited for `WAIT` at most: one held behind the stream fails, naming it.
    let (status, page) = get_text(&server, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("EventSource"), "{page}");
    assert_eq!(server.stats().await["consumers"], 1);
    client.next().await; // and the stream went on meanwhile
}
