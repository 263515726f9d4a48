//! The built-in page of a reader whose token reads some channels, not all, in Chromium: the page
//! shows its channel, and its ask for `/stats` (which needs `subscribe: ["*"]`) is refused without
//! a warning per reader on the server's stderr, and not repeated.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Server;
use common::page::viewer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "a test secret of 32 bytes or more";

#[test]
fn a_reader_of_one_channel_opens_the_page_without_a_warning() {
    let Some(mut browser) = viewer("a_reader_of_one_channel_opens_the_page_without_a_warning")
    else {
        return;
    };
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(600);
    let claims = json!({"exp": exp.as_secs(), "sse_broadcast": {"subscribe": ["team.a"]}});
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    // -v: the refusal is logged at debug, which shows the page did ask.
    let server = Server::start(&[
        "-i",
        "100ms",
        "--channel",
        "team.a",
        "--jwt-secret",
        SECRET,
        "-v",
    ]);
    // What the application's login sets for the hub's origin.
    browser.call(
        "Storage.setCookies",
        json!({"cookies": [{
            "name": "sse_broadcast_token",
            "value": token,
            "url": server.url("/"),
            "httpOnly": true,
        }]}),
    );
    browser.open(&server.url("/?channel=team.a"));
    browser.wait_for("the stream to open", "state() === 'open'");
    browser.wait_for("two rows", "rows().length >= 2");
    let log = server.wait_for_log("refused /stats or /metrics to a token without subscribe");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(warnings.is_empty(), "{log}");
    browser.assert_no_script_errors();
}
