//! A page this server serves itself (`--static-dir`) publishing with `fetch`, in Chromium: the
//! browser sends `Origin` on a same-origin POST too, and `--cors` naming another site must not
//! refuse it. Other sites stay as `--cors` says.

use crate::common;

use common::browser::Browser;
use common::{Server, WAIT};
use serde_json::{Value, json};

const TOKEN: &str = "a publish token";

/// A page whose button POSTs a line with the publish token, as an application's page would.
const PAGE: &str = r#"<!doctype html>
<title>publisher</title>
<button id="send">send</button>
<script>
  window.result = null;
  document.getElementById("send").onclick = () => {
    fetch("/events/build", {
      method: "POST",
      headers: { "Authorization": "Bearer a publish token", "Content-Type": "text/plain" },
      body: "from the page",
    }).then(
      (response) => response.text().then((body) => { window.result = { status: response.status, body }; }),
      (error) => { window.result = { error: String(error) }; },
    );
  };
</script>
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_this_server_publishes_with_cors_set_to_another_origin() {
    let Some(browser) =
        Browser::launch("a_page_of_this_server_publishes_with_cors_set_to_another_origin")
    else {
        return;
    };
    let mut browser = browser.scripted("", "window.result", "true");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), PAGE).unwrap();
    let server = Server::start(&[
        "-i",
        "1h",
        "--static-dir",
        dir.path().to_str().unwrap(),
        "--cors",
        "https://app.example",
        "--publish-token",
        TOKEN,
    ]);
    let mut reader = server.events("/events/build").await;

    browser.open(&server.url("/"));
    browser.eval("document.getElementById('send').click()");
    browser.wait_for("the POST's answer", "window.result !== null");
    let result = browser.eval("window.result");
    assert_eq!(result["status"], 200, "{result:#}\n{}", server.stderr());
    let answer: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["channel"], "build", "{answer}");
    assert_eq!(reader.next().await.data, "from the page");
    browser.assert_no_script_errors();

    // Another site is still held to the list: refused, with no CORS headers.
    let client = reqwest::Client::new();
    let post = |origin: &'static str| {
        client
            .post(server.url("/events/build"))
            .header("origin", origin)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body("from elsewhere")
            .send()
    };
    let foreign = tokio::time::timeout(WAIT, post("https://evil.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let allowed = tokio::time::timeout(WAIT, post("https://app.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(reader.next().await.data, "from elsewhere");
    let stats = server.stats().await;
    assert_eq!(
        stats["channels"]["build"]["events_sent"],
        json!(2),
        "only the page's and the allowed origin's lines were published: {stats}"
    );
}
