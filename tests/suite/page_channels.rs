//! The built-in page viewing several channels on one stream (`/?channel=a,b`) in headless
//! Chromium: rows of both channels, newest first, each naming its channel (read from the id,
//! the stream's cursor), the history replayed on opening marked as such, then live rows.

use crate::common;

use common::Server;
use common::page::{column, viewer};
use serde_json::Value;

#[test]
fn the_page_shows_rows_of_two_channels_each_naming_its_channel() {
    let Some(mut browser) = viewer("the_page_shows_rows_of_two_channels_each_naming_its_channel")
    else {
        return;
    };
    let mut server = Server::piped(&["-f", "json"]);
    server.write(
        concat!(
            r#"{"data": "build started", "channel": "build"}"#,
            "\n",
            r#"{"data": "elsewhere", "channel": "other"}"#,
            "\n",
            r#"{"data": "v1 shipped", "channel": "deploy", "event": "stage"}"#,
            "\n",
        )
        .as_bytes(),
    );
    server.wait_for_log("sent channel=deploy id=1");
    browser.open(&server.url("/?channel=build,deploy"));
    browser.wait_for("the history rows", "rows().length === 2");
    browser.wait_for("the stream to open", "state() === 'open'");
    let page = browser.snapshot();
    assert_eq!(
        column(&page, "data"),
        ["v1 shipped", "build started"],
        "{page:#}"
    );
    assert_eq!(column(&page, "channel"), ["deploy", "build"], "{page:#}");
    assert_eq!(
        column(&page, "id"),
        ["deploy:1,build:1", "build:1,deploy:0"],
        "{page:#}"
    );
    assert_eq!(column(&page, "name"), ["stage", "message"], "{page:#}");
    assert_eq!(page["history"], Value::from(vec![true, true]), "{page:#}");
    assert!(
        page["source"]
            .as_str()
            .unwrap()
            .starts_with("/events/build,deploy"),
        "{page:#}"
    );

    server.write(
        concat!(
            r#"{"data": "build done", "channel": "build"}"#,
            "\n",
            r#"{"data": "not shown", "channel": "other"}"#,
            "\n",
            r#"{"data": "v2 shipped", "channel": "deploy"}"#,
            "\n",
        )
        .as_bytes(),
    );
    browser.wait_for("the live rows", "rows().length === 4");
    let page = browser.snapshot();
    assert_eq!(
        column(&page, "data")[..2],
        ["v2 shipped", "build done"],
        "{page:#}"
    );
    assert_eq!(
        column(&page, "channel")[..2],
        ["deploy", "build"],
        "{page:#}"
    );
    assert_eq!(page["history"][0], false, "{page:#}");

    // The channel list marks both viewed channels.
    browser.wait_for(
        "the channel list",
        "document.querySelectorAll('#channels a').length === 4",
    );
    let page = browser.snapshot();
    assert_eq!(
        page["current"],
        serde_json::json!(["build", "deploy"]),
        "{page:#}"
    );
    browser.assert_no_script_errors();
}
