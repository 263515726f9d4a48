//! `--cors` with credentials: a page on an allowed origin reads a private channel with
//! `new EventSource(url, {withCredentials: true})`, which sends the token cookie and accepts the
//! answer only with `Access-Control-Allow-Credentials: true` and its own origin echoed (browsers
//! refuse `*` there), marked `Vary: Origin`. `--cors '*'` lets any origin read, never with
//! credentials.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Server, WAIT, data};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "a test secret of 32 bytes or more";
const APP: &str = "https://app.example";

/// An HS256 token allowing channel `team.a` for a minute.
fn reader_token() -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60);
    let claims = json!({"exp": exp.as_secs(), "sse_broadcast": {"subscribe": ["team.a"]}});
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

async fn preflight(server: &Server, origin: &str) -> reqwest::Response {
    let request = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.url("/events/team.a"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "last-event-id")
        .send();
    tokio::time::timeout(WAIT, request).await.unwrap().unwrap()
}

#[tokio::test]
async fn an_allowed_origin_reads_a_private_channel_with_the_cookie() {
    let mut server = Server::piped(&["-f", "json", "--jwt-secret", SECRET, "--cors", APP]);
    let cookie = format!("sse_broadcast_token={}", reader_token());
    let mut client = server
        .events_with("/events/team.a", &[("origin", APP), ("cookie", &cookie)])
        .await;
    assert_eq!(client.status, 200);
    let headers = &client.response_headers;
    assert_eq!(header(headers, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(headers, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(headers, "vary"), Some("origin"), "{headers:?}");
    server.write(b"{\"data\": \"for the app\", \"channel\": \"team.a\"}\n");
    assert_eq!(data(&[client.next().await]), ["for the app"]);

    // The preflight a browser sends before a credentialed request with a header of its own.
    let answer = preflight(&server, APP).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    let headers = answer.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(headers, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(headers, "vary"), Some("origin"));
}

#[tokio::test]
async fn any_origin_reads_without_credentials() {
    let server = Server::start(&["-i", "1s", "--cors", "*"]);
    let client = server
        .events_with("/events", &[("origin", "https://any.example")])
        .await;
    assert_eq!(client.status, 200);
    let headers = &client.response_headers;
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some("https://any.example")
    );
    assert_eq!(header(headers, "access-control-allow-credentials"), None);
    assert_eq!(header(headers, "vary"), Some("origin"));
    let answer = preflight(&server, "https://any.example").await;
    assert_eq!(
        header(answer.headers(), "access-control-allow-credentials"),
        None
    );
}
