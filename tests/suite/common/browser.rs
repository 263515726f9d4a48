//! Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
//! messages ending in NUL on fds 3 and 4); every check polls the live DOM with a bounded wait.
//! (`--dump-dom` can't be used: its virtual time stops while a fetch is open, and an event stream
//! never finishes.) Without Chromium a page test fails, saying how to install it: a test that passes
//! without running proves nothing. `SKIP_BROWSER_TESTS=1` is the one explicit way to skip them
//! (with a loud message), for a machine that cannot have a browser.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use serde_json::{Value, json};

use super::WAIT;

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
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    /// The page's DevTools session, once `open` attached to it.
    session: Option<String>,
    /// Uncaught exceptions the page reported (`Runtime.exceptionThrown`).
    script_errors: Vec<Value>,
    /// Script defined before every evaluation (helpers a test's conditions call).
    helpers: String,
    /// An expression showing the page's state, printed when a wait fails.
    snapshot: String,
    /// True once a page opened by `open` is ready for checks.
    ready: String,
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium. Without it the test fails, unless `SKIP_BROWSER_TESTS` is set: then this
    /// returns `None` after a loud message and the test returns early.
    pub fn launch(test: &str) -> Option<Browser> {
        Browser::launch_with(test, &[])
    }

    /// `launch` with more command-line flags.
    pub fn launch_with(test: &str, extra_flags: &[&str]) -> Option<Browser> {
        let Some(chromium) = find_chromium() else {
            let skip = std::env::var("SKIP_BROWSER_TESTS")
                .is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
            assert!(
                skip,
                "Chromium is not installed, so {test} cannot run: install it (apt-get install \
                 chromium, or `bash .ci/run`, which installs what the tests need), or point \
                 CHROMIUM at a Chrome binary. To skip the page tests on purpose, set \
                 SKIP_BROWSER_TESTS=1"
            );
            // Straight to stderr: libtest captures `eprintln!` of passing tests, hiding the skip.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED {test}: Chromium not found on PATH and SKIP_BROWSER_TESTS is set. \
                 This test proved nothing. !!!!!\n"
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
            .args(extra_flags)
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
            helpers: String::new(),
            snapshot: "document.body ? document.body.innerText : null".into(),
            ready: "true".into(),
            dir,
        })
    }

    /// Sets the script defined before each evaluation, the expression a failed wait prints, and
    /// the condition `open` waits for after the document loaded.
    pub fn scripted(mut self, helpers: &str, snapshot: &str, ready: &str) -> Browser {
        self.helpers = helpers.to_owned();
        self.snapshot = snapshot.to_owned();
        self.ready = ready.to_owned();
        self
    }

    /// Opens `url` in a new page, which later calls talk to.
    pub fn open(&mut self, url: &str) {
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
        let ready = format!("document.readyState === 'complete' && ({})", self.ready);
        self.wait_for("the page to load", &ready);
    }

    /// Sends one protocol command and waits for its reply. Fails the test on an error reply, on
    /// silence, or when the page opens a dialog (`alert()` from injected markup, for one).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
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

    /// Evaluates `expression` in the page (after the helpers) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let reply = self.call(
            "Runtime.evaluate",
            json!({"expression": format!("{}\n{expression}", self.helpers), "returnByValue": true}),
        );
        if let Some(exception) = reply.get("exceptionDetails") {
            panic!("evaluating {expression}: {exception:#}");
        }
        reply["result"]["value"].clone()
    }

    pub fn snapshot(&mut self) -> Value {
        let snapshot = self.snapshot.clone();
        self.eval(&snapshot)
    }

    /// Polls `condition` (a JS expression) until it is true, or fails the test showing the page.
    pub fn wait_for(&mut self, what: &str, condition: &str) {
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

    pub fn assert_no_script_errors(&mut self) {
        self.eval("0"); // takes in the events that arrived before now
        assert!(
            self.script_errors.is_empty(),
            "the page threw: {:#?}",
            self.script_errors
        );
    }

    pub fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        std::fs::write(
            path,
            BASE64_STANDARD
                .decode(shot["data"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
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
