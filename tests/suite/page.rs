//! The built-in page in a real browser: headless Chromium (`common::browser`) shows the events a
//! real server sends, as text, newest first, with pause, named events, replay and the connection
//! state.

use crate::common;

use std::path::PathBuf;

use common::page::{column, viewer};
use common::{Client, Server};
use serde_json::json;

#[test]
fn events_show_as_text_newest_first_and_run_nothing() {
    let Some(mut browser) = viewer("events_show_as_text_newest_first_and_run_nothing") else {
        return;
    };
    let mut server = Server::piped(&["--wait-clients", "1"]);
    browser.open(&server.url("/"));
    browser.wait_for("the stream to open", "state() === 'open'");

    let lines = [
        "plain text,  two spaces kept",
        "<img src=x onerror=alert(1)>",
        "<script>document.title='pwned'</script><b>not bold</b>",
        "&lt;entity&gt; &amp; stays as typed",
    ];
    for line in lines {
        server.write(format!("{line}\n").as_bytes());
    }
    browser.wait_for("4 rows", "rows().length === 4 && count() === '4'");
    let page = browser.snapshot();
    let newest_first: Vec<&str> = lines.iter().rev().copied().collect();
    assert_eq!(column(&page, "data"), newest_first, "{page:#}");
    assert_eq!(column(&page, "id"), ["4", "3", "2", "1"], "{page:#}");
    assert_eq!(column(&page, "name"), ["message"; 4], "{page:#}");
    for time in column(&page, "time") {
        assert!(
            is_clock_time(&time),
            "receive time {time:?} is not HH:MM:SS.mmm"
        );
    }
    // Shown literally, nothing parsed: no element beyond the row's own, no image anywhere, the
    // title untouched (a dialog from alert() fails any later protocol call, see `Browser::call`).
    assert_eq!(
        page["foreign"], 0,
        "markup from the data became elements: {page:#}"
    );
    assert_eq!(page["images"], 0, "{page:#}");
    assert_eq!(page["title"], "sse-broadcast", "{page:#}");

    // Paused: counted, not shown; resumed: shown, in order.
    browser.eval("document.getElementById('pause').click()");
    server.write(b"while paused 1\nwhile paused 2\n");
    browser.wait_for("the count to reach 6", "count() === '6'");
    let page = browser.snapshot();
    assert_eq!(page["rows"].as_array().unwrap().len(), 4, "{page:#}");
    assert_eq!(page["pause"], "Resume (2 new)", "{page:#}");
    browser.eval("document.getElementById('pause').click()");
    browser.wait_for("6 rows", "rows().length === 6");
    let page = browser.snapshot();
    assert_eq!(
        column(&page, "data")[..2],
        ["while paused 2", "while paused 1"]
    );
    assert_eq!(page["pause"], "Pause");

    // The server goes away: the browser keeps trying, and the page says so.
    server.terminate();
    browser.wait_for(
        "the state to say reconnecting",
        "state() === 'reconnecting'",
    );
    browser.assert_no_script_errors();
}

#[test]
fn named_events_multi_line_data_replay_and_another_path() {
    let Some(mut browser) = viewer("named_events_multi_line_data_replay_and_another_path") else {
        return;
    };
    let mut server = Server::piped(&["--format", "json", "--events-path", "/stream"]);
    let lines = [
        r#"{"data": "hello, first event"}"#,
        r#"{"event": "clock", "data": "tick 2"}"#,
        r#"{"event": "other", "data": "a name nobody declared"}"#,
        r#"{"data": "line one\nline two\n  indented line three"}"#,
        r#"{"id": "order-7", "event": "order", "data": {"qty": 2, "sku": "A-17"}}"#,
    ];
    for line in lines {
        server.write(format!("{line}\n").as_bytes());
    }
    server.wait_for_log("sent id=\"order-7\"");

    // Sent before the page existed: ?lastEventId=1 on the page replays the ones after it.
    browser.open(&server.url("/?events=/stream&lastEventId=1"));
    browser.wait_for("4 rows", "rows().length === 4");
    let page = browser.snapshot();
    assert_eq!(
        column(&page, "data"),
        [
            r#"{"qty":2,"sku":"A-17"}"#,
            "line one\nline two\n  indented line three",
            "a name nobody declared",
            "tick 2",
        ],
        "{page:#}"
    );
    assert_eq!(column(&page, "id"), ["order-7", "4", "3", "2"]);
    assert_eq!(
        column(&page, "name"),
        ["order", "message", "other", "clock"],
        "every event shows, whatever its name"
    );
    assert_eq!(page["count"], "4", "{page:#}");
    assert!(
        page["source"].as_str().unwrap().contains("/stream"),
        "{page:#}"
    );
    // Line breaks are rendered, not only kept in the text: three lines tall.
    let lines_tall = browser.eval(
        "(() => { const data = document.querySelectorAll('#events .data')[1];
                  const style = getComputedStyle(data);
                  return [style.whiteSpace, data.offsetHeight / parseFloat(style.lineHeight)]; })()",
    );
    assert_eq!(lines_tall[0], "pre-wrap");
    let lines_tall = lines_tall[1].as_f64().unwrap();
    assert!((2.5..3.5).contains(&lines_tall), "{lines_tall} lines tall");

    // Live events follow the replay on the same connection.
    server.write(b"{\"event\": \"clock\", \"data\": \"tick live\"}\n");
    browser.wait_for("the live event", "rows().length === 5");
    let page = browser.snapshot();
    assert_eq!(page["rows"][0]["data"], "tick live");
    assert_eq!(page["rows"][0]["id"], "6");
    assert_eq!(page["state"], "open");

    if let Some(path) = std::env::var_os("PAGE_SCREENSHOT") {
        let path = PathBuf::from(path);
        browser.screenshot(&path);
        browser.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
        );
        browser.screenshot(&path.with_file_name(format!(
            "{}-dark.png",
            path.file_stem().unwrap().to_string_lossy()
        )));
    }
    browser.assert_no_script_errors();
}

#[test]
fn history_shows_at_once_then_named_events_go_on_live() {
    let Some(mut browser) = viewer("history_shows_at_once_then_named_events_go_on_live") else {
        return;
    };
    let mut server = Server::piped(&["-e", "build"]);
    server.write(b"compiling\nlinking\n");
    server.wait_for_log("sent id=2");

    // A first open asks for everything kept: the page is not empty, and says it is history.
    browser.open(&server.url("/"));
    browser.wait_for("2 rows", "rows().length === 2");
    let page = browser.snapshot();
    assert_eq!(column(&page, "data"), ["linking", "compiling"], "{page:#}");
    assert_eq!(column(&page, "name"), ["build", "build"], "{page:#}");
    assert!(
        page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["history"] == true),
        "{page:#}"
    );
    browser.wait_for("the stream to open", "state() === 'open'");
    assert_eq!(browser.snapshot()["detail"], "2 from history");
    server.write(b"done\n");
    browser.wait_for("the live row", "rows().length === 3");
    let page = browser.snapshot();
    assert_eq!(page["rows"][0]["data"], "done");
    assert_eq!(page["rows"][0]["name"], "build", "-e names show: {page:#}");
    assert_eq!(page["rows"][0]["history"], false, "{page:#}");
    assert_eq!(page["rows"][0]["id"], "3");
    browser.assert_no_script_errors();
}

#[test]
fn a_named_channel_is_viewed_and_the_live_ones_are_listed() {
    let Some(mut browser) = viewer("a_named_channel_is_viewed_and_the_live_ones_are_listed") else {
        return;
    };
    let mut server = Server::piped(&["-f", "json"]);
    server.write(
        concat!(
            r#"{"data": "job 1 queued", "channel": "jobs", "event": "queued"}"#,
            "\n",
            r#"{"data": "elsewhere", "channel": "other"}"#,
            "\n",
            r#"{"data": "on the default channel"}"#,
            "\n",
        )
        .as_bytes(),
    );
    server.wait_for_log("sent id=1");
    browser.open(&server.url("/?channel=jobs"));
    browser.wait_for("the history row", "rows().length === 1");
    browser.wait_for(
        "the channel list",
        "document.querySelectorAll('#channels a').length === 3",
    );
    let page = browser.snapshot();
    assert_eq!(page["rows"][0]["data"], "job 1 queued", "{page:#}");
    assert_eq!(page["rows"][0]["name"], "queued", "{page:#}");
    assert_eq!(
        page["channels"],
        json!(["default", "jobs", "other"]),
        "{page:#}"
    );
    assert_eq!(page["current"], json!(["jobs"]), "{page:#}");
    assert!(
        page["source"].as_str().unwrap().starts_with("/events/jobs"),
        "{page:#}"
    );

    server.write(b"{\"data\": \"job 1 done\", \"channel\": \"jobs\"}\n{\"data\": \"not here\"}\n");
    browser.wait_for("the live row", "rows().length === 2");
    server.write(b"{\"data\": \"job 2 queued\", \"channel\": \"jobs\"}\n");
    browser.wait_for("the next live row", "rows().length === 3");
    let page = browser.snapshot();
    assert_eq!(
        column(&page, "data"),
        ["job 2 queued", "job 1 done", "job 1 queued"],
        "{page:#}"
    );
    assert_eq!(column(&page, "id"), ["3", "2", "1"], "{page:#}");

    // The list links to the other channels.
    browser.eval("document.querySelector('#channels a:not([aria-current])').click()");
    browser.wait_for(
        "the default channel",
        "rows().length === 2 && rows()[0].data === 'not here'",
    );
    browser.assert_no_script_errors();
}

#[test]
fn keeps_the_newest_500_rows() {
    let Some(mut browser) = viewer("keeps_the_newest_500_rows") else {
        return;
    };
    let mut server = Server::piped(&["--wait-clients", "1"]);
    browser.open(&server.url("/"));
    let lines: String = (1..=520).map(|n| format!("line {n}\n")).collect();
    server.write(lines.as_bytes());
    browser.wait_for("520 counted", "count() === '520'");
    browser.wait_for("500 rows", "rows().length === 500");
    let page = browser.snapshot();
    let data = column(&page, "data");
    assert_eq!(
        (data[0].as_str(), data[499].as_str()),
        ("line 520", "line 21")
    );
    browser.assert_no_script_errors();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_stream_is_retried_by_the_page() {
    let Some(mut browser) = viewer("a_refused_stream_is_retried_by_the_page") else {
        return;
    };
    let mut server = Server::piped(&["--max-clients", "1"]);
    let holder = Client::connect(&server.url("/events"), &[]).await;
    assert_eq!(holder.status, 200);
    server.wait_for_consumers(1).await;

    // A 503 makes the browser give up for good; the page tries again by itself.
    browser.open(&server.url("/"));
    browser.wait_for("the state to say closed", "state() === 'closed'");
    let page = browser.snapshot();
    assert!(
        page["detail"].as_str().unwrap().starts_with("retrying in"),
        "{page:#}"
    );
    drop(holder);
    browser.wait_for("the retried stream to open", "state() === 'open'");
    server.write(b"after the retry\n");
    browser.wait_for("the event", "rows().length === 1");
    assert_eq!(browser.snapshot()["rows"][0]["data"], "after the retry");
    browser.assert_no_script_errors();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_follows_no_events_path_of_another_origin() {
    let Some(mut browser) = viewer("the_page_follows_no_events_path_of_another_origin") else {
        return;
    };
    let mut own = Server::piped(&[]);
    // Another origin (another port) that would let the page read it.
    let mut other = Server::piped(&["--cors", "*"]);
    let elsewhere = other.base.strip_prefix("http:").unwrap().to_owned();
    for (opened, asked) in [
        format!("{elsewhere}/events"),
        format!("/\\{}/events", elsewhere.trim_start_matches('/')),
        format!("http:{elsewhere}/events"),
    ]
    .iter()
    .enumerate()
    {
        let query: String = url_encode(asked);
        browser.open(&own.url(&format!("/?events={query}")));
        browser.wait_for("the stream to open", "state() === 'open'");
        let page = browser.snapshot();
        assert_eq!(
            page["source"], "/events?lastEventId=earliest",
            "{asked}: {page:#}"
        );
        own.wait_for_consumers(opened as u64 + 1).await;
    }
    other.write(b"from the other origin\n");
    own.write(b"from this server\n");
    browser.wait_for("this server's event", "rows().length === 1");
    assert_eq!(browser.snapshot()["rows"][0]["data"], "from this server");
    assert_eq!(other.stats().await["consumers"], 0);
    browser.assert_no_script_errors();
}

/// `text` percent-encoded for a query value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn is_clock_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 12
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            2 | 5 => b == b':',
            8 => b == b'.',
            _ => b.is_ascii_digit(),
        })
}
