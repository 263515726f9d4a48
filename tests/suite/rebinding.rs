//! DNS rebinding on the real binary (issue 18): a page on `rebind.example`, whose DNS answer has
//! turned to 127.0.0.1, asks this server for every path with its own name in `Host` (HTTP/1.1)
//! or `:authority` (HTTP/2). Bound to loopback, the server refuses it 403 on every path, `--auth`
//! or not, and serves loopback names and `--allowed-host` ones; bound to 0.0.0.0 it serves any
//! name unless `--allowed-host` is given.

use crate::common;

use std::net::SocketAddr;
use std::process::Command;

use common::{BIN, Input, Server};
use reqwest::StatusCode;

const REBINDING: &str = "rebind.example";

/// The port of the `listening on` line, whatever address it shows.
fn port_of(server: &Server) -> u16 {
    server.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A client that finds `names` at 127.0.0.1, as a browser does after a rebinding answer.
fn client(names: &[&str], port: u16, http2: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    for name in names {
        builder = builder.resolve(name, SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if http2 {
        builder = builder.http2_prior_knowledge();
    }
    builder.build().unwrap()
}

/// The status of `method path` sent to 127.0.0.1 with `Host: host` (the head only: a stream
/// that is served does not end).
async fn status(
    client: &reqwest::Client,
    method: &str,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method.clone(), format!("http://{host}:{port}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if method == reqwest::Method::POST {
        request = request.body("published");
    }
    let response = tokio::time::timeout(common::WAIT, request.send())
        .await
        .expect("an answer in time")
        .unwrap_or_else(|err| panic!("{host}{path}: {err}"));
    let code = response.status();
    let body = if code == StatusCode::OK && path.starts_with("/events") && method == "GET" {
        String::new() // a stream: its head is the answer
    } else {
        response.text().await.unwrap()
    };
    (code, body)
}

/// Every path: the page, a static file, the stream, /stats, /metrics and a POST.
const PATHS: [(&str, &str); 6] = [
    ("GET", "/"),
    ("GET", "/file.txt"),
    ("GET", "/events"),
    ("GET", "/stats"),
    ("GET", "/metrics"),
    ("POST", "/events"),
];

fn static_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>local page</p>").unwrap();
    std::fs::write(dir.path().join("file.txt"), "local file").unwrap();
    dir
}

fn server(dir: &tempfile::TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["-i", "1h", "--publish-token", "t", "--static-dir"];
    args.push(dir.path().to_str().unwrap());
    args.extend_from_slice(extra);
    Server::start(&args)
}

const TOKEN: (&str, &str) = ("Authorization", "Bearer t");

#[tokio::test(flavor = "multi_thread")]
async fn a_rebinding_name_is_refused_on_every_path_over_http1_and_http2() {
    let dir = static_dir();
    let server = server(&dir, &[]);
    let port = port_of(&server);
    for http2 in [false, true] {
        let rebound = client(&[REBINDING], port, http2);
        for (method, path) in PATHS {
            let (code, body) = status(&rebound, method, REBINDING, port, path, &[TOKEN]).await;
            assert_eq!(code, 403, "{method} {path} (h2: {http2}): {body}");
            assert!(body.contains("DNS-rebinding"), "says why: {body}");
        }
    }
    // Nothing was published or streamed.
    let stats = server.stats().await;
    assert_eq!(stats["events_sent"], 0, "{stats}");
    assert!(
        server.stderr().contains("refused a Host"),
        "{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_names_are_served_on_every_path() {
    let dir = static_dir();
    let server = server(&dir, &[]);
    let port = port_of(&server);
    for http2 in [false, true] {
        let local = client(&["localhost"], port, http2);
        for (method, path) in PATHS {
            let (code, body) = status(&local, method, "localhost", port, path, &[TOKEN]).await;
            assert_eq!(code, 200, "{method} {path} (h2: {http2}): {body}");
        }
        let (code, body) = status(&local, "GET", "127.0.0.1", port, "/file.txt", &[]).await;
        assert_eq!((code, body.as_str()), (StatusCode::OK, "local file"));
    }
    // `[::1]` as the server sees it in Host, the connection going to 127.0.0.1.
    let host = format!("[::1]:{port}");
    let plain = reqwest::Client::new();
    for host in [host.as_str(), "localhost", "127.0.0.2:1"] {
        let (code, _) = status(
            &plain,
            "GET",
            "127.0.0.1",
            port,
            "/stats",
            &[("Host", host)],
        )
        .await;
        assert_eq!(code, 200, "Host: {host}");
    }
    let (code, _) = status(
        &plain,
        "GET",
        "127.0.0.1",
        port,
        "/stats",
        &[("Host", "evil:1")],
    )
    .await;
    assert_eq!(code, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_hosts_are_served_from_the_flag_and_the_environment() {
    let dir = static_dir();
    let by_flag = server(
        &dir,
        &["--allowed-host", "my.box", "--allowed-host", "Other.Box"],
    );
    let mut command = Command::new(BIN);
    command
        .args(["--port", "0", "-i", "1h", "--static-dir"])
        .arg(dir.path())
        .env("SSE_BROADCAST_ALLOWED_HOST", "my.box,other.box");
    let by_env = Server::spawn(command, Input::Null);
    for server in [&by_flag, &by_env] {
        let port = port_of(server);
        for http2 in [false, true] {
            let names = client(&["my.box", "other.box", REBINDING], port, http2);
            for host in ["my.box", "other.box"] {
                let (code, body) = status(&names, "GET", host, port, "/file.txt", &[]).await;
                assert_eq!(
                    (code, body.as_str()),
                    (StatusCode::OK, "local file"),
                    "{host}"
                );
                let (code, _) = status(&names, "GET", host, port, "/events", &[]).await;
                assert_eq!(code, 200, "{host}");
            }
            let (code, _) = status(&names, "GET", REBINDING, port, "/file.txt", &[]).await;
            assert_eq!(code, 403);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_auth_a_rebinding_name_is_refused_even_with_the_password() {
    let dir = static_dir();
    let server = server(&dir, &["--auth", "me:pw"]);
    let port = port_of(&server);
    let rebound = client(&[REBINDING], port, false);
    // Basic me:pw
    let right = ("Authorization", "Basic bWU6cHc=");
    let (code, _) = status(&rebound, "GET", REBINDING, port, "/stats", &[right]).await;
    assert_eq!(code, 403);
    let local = client(&["localhost"], port, false);
    let (code, _) = status(&local, "GET", "localhost", port, "/stats", &[right]).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_bind_serves_any_name_unless_allowed_hosts_are_given() {
    let dir = static_dir();
    // Reached at 127.0.0.1, but bound to every address: a loopback address is not the bind.
    let open = server(&dir, &["--bind", "0.0.0.0"]);
    let port = port_of(&open);
    for http2 in [false, true] {
        let any = client(&[REBINDING, "my.box"], port, http2);
        for (method, path) in PATHS {
            let (code, body) = status(&any, method, REBINDING, port, path, &[TOKEN]).await;
            assert_eq!(code, 200, "{method} {path} (h2: {http2}): {body}");
        }
    }
    let listed = server(&dir, &["--bind", "0.0.0.0", "--allowed-host", "my.box"]);
    let port = port_of(&listed);
    let names = client(&[REBINDING, "my.box", "localhost"], port, false);
    for (host, expected) in [("my.box", 200), ("localhost", 200), (REBINDING, 403)] {
        let (code, _) = status(&names, "GET", host, port, "/stats", &[]).await;
        assert_eq!(code, expected, "{host}");
    }
}
