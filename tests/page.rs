//! The built-in page in a real browser: headless Chromium shows the events a real server sends, as
//! text, newest first, with pause, named events, replay and the connection state.
//!
//! Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
//! messages ending in NUL on fds 3 and 4), and every check polls the live DOM with a bounded wait.
//! (`--dump-dom` can't be used: its virtual time stops while a fetch is open, and an event stream
//! never finishes.) Without Chromium the tests skip with a loud message, unless `CI` is set: then
//! they fail.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{Client, Server, WAIT};
use serde_json::{Value, json};

#[test]
fn events_show_as_text_newest_first_and_run_nothing() {
    let Some(mut browser) = Browser::launch("events_show_as_text_newest_first_and_run_nothing")
    else {
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
    let Some(mut browser) = Browser::launch("named_events_multi_line_data_replay_and_another_path")
    else {
        return;
    };
    let mut server = Server::piped(&["--format", "json", "--events-path", "/stream"]);
    let lines = [
        r#"{"data": "hello, first event"}"#,
        r#"{"event": "clock", "data": "tick 2"}"#,
        r#"{"event": "other", "data": "nobody listens to this name"}"#,
        r#"{"data": "line one\nline two\n  indented line three"}"#,
        r#"{"id": "order-7", "event": "order", "data": {"qty": 2, "sku": "A-17"}}"#,
    ];
    for line in lines {
        server.write(format!("{line}\n").as_bytes());
    }
    server.wait_for_log("sent id=\"order-7\"");

    // Sent before the page existed: ?lastEventId=0 on the page replays them from history.
    browser.open(&server.url("/?events=/stream&event=clock,%20order&lastEventId=0"));
    browser.wait_for("4 rows", "rows().length === 4");
    let page = browser.snapshot();
    assert_eq!(
        column(&page, "data"),
        [
            r#"{"qty":2,"sku":"A-17"}"#,
            "line one\nline two\n  indented line three",
            "tick 2",
            "hello, first event",
        ],
        "{page:#}"
    );
    assert_eq!(column(&page, "id"), ["order-7", "4", "2", "1"]);
    assert_eq!(
        column(&page, "name"),
        ["order", "message", "clock", "message"]
    );
    assert_eq!(
        page["count"], "4",
        "only the names listened to arrive: {page:#}"
    );
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
fn keeps_the_newest_500_rows() {
    let Some(mut browser) = Browser::launch("keeps_the_newest_500_rows") else {
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
    let Some(mut browser) = Browser::launch("a_refused_stream_is_retried_by_the_page") else {
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

/// Helpers defined in the page before each check: `state()`, `count()`, `rows()`.
const HELPERS: &str = "
    var state = () => document.getElementById('state').textContent;
    var count = () => document.getElementById('count').textContent;
    var rows = () => [...document.querySelectorAll('#events > li')].map((li) => ({
        id: li.querySelector('.id').textContent,
        name: li.querySelector('.name').textContent,
        time: li.querySelector('.time').textContent,
        data: li.querySelector('.data').textContent,
    }));
";

/// Everything a test asserts on, read in one go.
const SNAPSHOT: &str = "({
    state: state(),
    detail: document.getElementById('detail').textContent,
    count: count(),
    rows: rows(),
    pause: document.getElementById('pause').textContent,
    source: document.getElementById('source').textContent,
    title: document.title,
    images: document.images.length,
    foreign: [...document.querySelectorAll('#events *')]
        .filter((e) => !['LI', 'TIME', 'SPAN', 'DIV'].includes(e.tagName)).length,
})";

fn column(page: &Value, field: &str) -> Vec<String> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[field].as_str().unwrap().to_owned())
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

/// Flags for a quiet, self-contained headless run: no network of its own, no first-run UI.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox", // root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1100,640",
    "--remote-debugging-pipe",
];

/// One headless Chromium with one page, spoken to over the DevTools pipe.
struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    /// The page's DevTools session, once `open` attached to it.
    session: Option<String>,
    /// Uncaught exceptions the page reported (`Runtime.exceptionThrown`).
    script_errors: Vec<Value>,
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium, or returns `None` after a loud message when it is not installed and
    /// `CI` is not set. On CI a missing browser fails the test.
    fn launch(test: &str) -> Option<Browser> {
        let Some(chromium) = find_chromium() else {
            let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
            assert!(
                !ci,
                "CI is set but Chromium is not installed (apt-get install chromium), \
                 so the page tests cannot run"
            );
            // Straight to stderr: libtest captures `eprintln!` of passing tests, hiding the skip.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED {test}: Chromium not found on PATH (apt-get install chromium, \
                 or set CHROMIUM=/path/to/chrome). This test fails instead when CI is set. !!!!!\n"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let log = File::create(dir.path().join("chromium.log")).unwrap();
        // The protocol pipe is fds 3 (commands in) and 4 (replies out); std can't map extra fds
        // without `unsafe`, so a shell moves our stdin/stdout pipes there before exec'ing Chromium.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$@" 3<&0 4>&1 </dev/null >&2"#)
            .arg("sh")
            .arg(&chromium)
            .args(FLAGS)
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", chromium.display()));
        let commands = child.stdin.take().unwrap();
        let replies = BufReader::new(child.stdout.take().unwrap());
        let (tx, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for message in replies.split(0) {
                let Ok(message) = message else { break };
                let Ok(message) = serde_json::from_slice(&message) else {
                    continue;
                };
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        Some(Browser {
            child,
            commands,
            messages,
            next_id: 0,
            session: None,
            script_errors: Vec::new(),
            dir,
        })
    }

    /// Opens `url` in a new page, which later calls talk to.
    fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        self.call("Page.enable", json!({}));
        self.call("Runtime.enable", json!({}));
        let navigation = self.call("Page.navigate", json!({"url": url}));
        assert!(
            navigation.get("errorText").is_none(),
            "open {url}: {navigation}"
        );
        // `Page.navigate` answers before the new document has run its script.
        self.wait_for(
            "the page to load",
            "document.readyState === 'complete' && document.getElementById('state') !== null",
        );
    }

    /// Sends one protocol command and waits for its reply. Fails the test on an error reply, on
    /// silence, or when the page opens a dialog (`alert()` from injected markup, for one).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&command).unwrap();
        bytes.push(0);
        if let Err(err) = self.commands.write_all(&bytes) {
            panic!("Chromium is gone ({err}); its log:\n{}", self.log());
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.messages.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "Chromium did not answer {method} within {WAIT:?}; its log:\n{}",
                    self.log()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("Chromium exited during {method}; its log:\n{}", self.log())
                }
            };
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
            match message["method"].as_str() {
                Some("Page.javascriptDialogOpening") => {
                    panic!("the page opened a dialog: {}", message["params"])
                }
                Some("Runtime.exceptionThrown") => {
                    self.script_errors.push(message["params"].clone())
                }
                _ => {}
            }
        }
    }

    /// Evaluates `expression` in the page (with `HELPERS` defined) and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let reply = self.call(
            "Runtime.evaluate",
            json!({"expression": format!("{HELPERS}\n{expression}"), "returnByValue": true}),
        );
        if let Some(exception) = reply.get("exceptionDetails") {
            panic!("evaluating {expression}: {exception:#}");
        }
        reply["result"]["value"].clone()
    }

    fn snapshot(&mut self) -> Value {
        self.eval(SNAPSHOT)
    }

    /// Polls `condition` (a JS expression) until it is true, or fails the test showing the page.
    fn wait_for(&mut self, what: &str, condition: &str) {
        let deadline = Instant::now() + WAIT;
        while self.eval(condition) != true {
            if Instant::now() > deadline {
                let page = self.snapshot();
                panic!(
                    "waited {WAIT:?} for {what} ({condition}); the page: {page:#}\n\
                     script errors: {:#?}",
                    self.script_errors
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn assert_no_script_errors(&mut self) {
        self.eval("0"); // takes in the events that arrived before now
        assert!(
            self.script_errors.is_empty(),
            "the page threw: {:#?}",
            self.script_errors
        );
    }

    fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        std::fs::write(path, base64_decode(shot["data"].as_str().unwrap())).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Asked to close, Chromium takes its helper processes down with it; killed, it may not.
        self.session = None;
        let mut close = serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap();
        close.push(0);
        let _ = self.commands.write_all(&close);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$CHROMIUM`, or the first Chromium or Chrome on `PATH`.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Standard base64, as `Page.captureScreenshot` returns the image.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0);
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {byte:#x}"),
        };
        bits = (bits << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    out
}
