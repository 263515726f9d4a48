//! Test harness: runs the real binary on a free port, reads its address from stderr, connects
//! real HTTP clients and parses their streams with a third-party SSE parser (eventsource-stream).
//! Every wait is bounded; the child is killed on drop, and its stderr is printed when a test fails.

pub mod backend;
pub mod browser;
pub mod cli;
pub mod cluster;
pub mod listener;
pub mod page;
pub mod recipe;
pub mod redis;
pub mod sentinel;
pub mod tls;
pub mod turn;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// The longest any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(15);

pub const BIN: &str = env!("CARGO_BIN_EXE_sse-broadcast");

pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `http://127.0.0.1:PORT`, from the `listening on` line.
    pub base: String,
    stderr: Arc<Mutex<String>>,
    /// Set once stderr has been read to its end (every process holding it has exited).
    stderr_closed: Arc<AtomicBool>,
    /// The child's stdout when it was captured (`Output::Capture`), and whether it has closed.
    stdout: Option<CapturedStdout>,
    /// What `stats` and the other helpers ask with (one that trusts a test certificate, say).
    http: reqwest::Client,
    /// Set when stderr is left unread after the `listening on` line (`start_stderr_unread`):
    /// sending on it starts reading again.
    stderr_gate: Option<std::sync::mpsc::Sender<()>>,
    /// The pseudo-terminal's own end, held (never read) while the child runs
    /// (`Input::Terminal`): dropping it would hang the child's terminal up.
    _terminal: Option<std::os::fd::OwnedFd>,
    /// This test's module's turn (`turn.rs`), given back after the child is killed.
    _turn: Option<turn::Turn>,
}

/// The bytes read from the child's stdout so far, and whether it has closed.
type CapturedStdout = (Arc<Mutex<Vec<u8>>>, Arc<AtomicBool>);

/// What the child's stdin is.
pub enum Input {
    /// `/dev/null`: stdin mode ends at once unless a ticker is asked for.
    Null,
    /// A pipe the test writes to (`Server::write`, `Server::close_stdin`).
    Pipe,
    /// A terminal: the far end of a pseudo-terminal the harness opens and holds, as at a shell
    /// prompt. The binary is still the harness's own child (no `script` in between, whose
    /// child a SIGKILL would leave running, holding the test's stderr open).
    Terminal,
}

/// What the child's stdout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `/dev/null`.
    Null,
    /// A pipe read into memory (`Server::stdout`, `Server::wait_stdout_closed`).
    Capture,
}

impl Server {
    /// Starts `sse-broadcast --port 0 ARGS` with stdin at /dev/null.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, Input::Null)
    }

    /// Starts it with a stdin pipe the test writes lines to.
    pub fn piped(args: &[&str]) -> Server {
        Server::start_with(args, Input::Pipe)
    }

    pub fn start_with(args: &[&str], input: Input) -> Server {
        let mut command = Command::new(BIN);
        command.args(["--port", "0"]).args(args);
        Server::spawn(command, input)
    }

    /// Starts an arbitrary command that runs the binary (e.g. under `sh -c 'ulimit -n 64; exec …'`).
    pub fn spawn(command: Command, input: Input) -> Server {
        Server::spawn_with_output(command, input, Output::Null)
    }

    /// Starts `sse-broadcast --port 0 ARGS` with the given stdin and stdout.
    pub fn start_with_output(args: &[&str], input: Input, output: Output) -> Server {
        let mut command = Command::new(BIN);
        command.args(["--port", "0"]).args(args);
        Server::spawn_with_output(command, input, output)
    }

    pub fn spawn_with_output(command: Command, input: Input, output: Output) -> Server {
        Server::spawn_inner(command, input, output, false)
    }

    /// Starts `sse-broadcast --port 0 ARGS` and reads its stderr only up to the `listening on`
    /// line: the pipe then fills as a slow terminal or a stopped log shipper would let it, until
    /// `read_stderr_again`.
    pub fn start_stderr_unread(args: &[&str], input: Input) -> Server {
        let mut command = Command::new(BIN);
        command.args(["--port", "0"]).args(args);
        Server::spawn_inner(command, input, Output::Null, true)
    }

    /// Reads the stderr of a `start_stderr_unread` server again.
    pub fn read_stderr_again(&mut self) {
        let gate = self
            .stderr_gate
            .take()
            .expect("started with start_stderr_unread");
        gate.send(()).unwrap();
    }

    fn spawn_inner(mut command: Command, input: Input, output: Output, hold: bool) -> Server {
        let turn = turn::Turn::take();
        let mut terminal = None;
        command
            .stdin(match input {
                Input::Null => Stdio::null(),
                Input::Pipe => Stdio::piped(),
                Input::Terminal => {
                    let (master, slave) = pseudo_terminal();
                    terminal = Some(master);
                    Stdio::from(slave)
                }
            })
            .stdout(match output {
                Output::Null => Stdio::null(),
                Output::Capture => Stdio::piped(),
            })
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        let mut child = command.spawn().expect("spawn sse-broadcast");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(|mut pipe| {
            let captured = Arc::new(Mutex::new(Vec::new()));
            let closed = Arc::new(AtomicBool::new(false));
            let (into, done) = (captured.clone(), closed.clone());
            std::thread::spawn(move || {
                let mut buffer = vec![0; 64 * 1024];
                while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut buffer) {
                    into.lock().unwrap().extend_from_slice(&buffer[..n]);
                }
                done.store(true, Ordering::Release);
            });
            (captured, closed)
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let log = stderr.clone();
        let stderr_closed = Arc::new(AtomicBool::new(false));
        let closed = stderr_closed.clone();
        let (gate, held) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let address = line.strip_prefix("listening on ").map(str::to_owned);
                {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                if let Some(address) = address {
                    let _ = address_tx.send(address);
                    if hold {
                        let _ = held.recv(); // also ends when the Server is dropped
                    }
                }
            }
            closed.store(true, Ordering::Release);
        });
        let mut server = Server {
            child,
            stdin,
            base: String::new(),
            stderr,
            stderr_closed,
            stdout,
            http: reqwest::Client::new(),
            stderr_gate: hold.then_some(gate),
            _terminal: terminal,
            _turn: turn,
        };
        match address_rx.recv_timeout(WAIT) {
            Ok(base) => server.base = base,
            Err(_) => panic!("no `listening on` line; stderr:\n{}", server.stderr()),
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:PORT`, whichever the scheme.
    pub fn address(&self) -> String {
        let (_, address) = self.base.split_once("://").expect("a URL");
        address.to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr holds `needle` (returns the whole log), or fails the test.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_log_where(needle, |log| log.contains(needle))
    }

    pub fn wait_for_log_where(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.stderr();
            if found(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "stderr never showed {what:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("started with Input::Pipe");
        stdin.write_all(bytes).expect("write to the child's stdin");
        stdin.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Takes the stdin pipe, e.g. to feed it from another thread while the test reads streams.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("started with Input::Pipe")
    }

    /// Writes `bytes` to stdin from a thread (a blocked write then holds no test task back),
    /// then closes stdin. Join the handle to learn that the child has read everything.
    pub fn feed(&mut self, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
        let mut stdin = self.take_stdin();
        std::thread::spawn(move || {
            stdin.write_all(&bytes).expect("write to the child's stdin");
        })
    }

    /// What the child wrote to stdout so far (started with `Output::Capture`).
    pub fn stdout(&self) -> Vec<u8> {
        let (captured, _) = self.stdout.as_ref().expect("started with Output::Capture");
        captured.lock().unwrap().clone()
    }

    /// Waits until the child's stdout closes (it exited), then returns all it wrote.
    pub fn wait_stdout_closed(&self) -> Vec<u8> {
        let (_, closed) = self.stdout.as_ref().expect("started with Output::Capture");
        let deadline = Instant::now() + WAIT;
        while !closed.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "stdout never closed");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stdout()
    }

    /// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`, ...), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        proc_status_kib(self.pid(), field)
    }

    /// The resident set size, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `HUP`) with `kill`.
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Sends SIGTERM and expects the process to exit 0.
    pub fn terminate_cleanly(&mut self) {
        self.terminate();
        let status = self.wait_exit();
        assert_eq!(
            status.code(),
            Some(0),
            "{status}; stderr:\n{}",
            self.stderr()
        );
    }

    /// Waits for the process to exit, or fails the test; then for its stderr to be read to the
    /// end, so that `stderr()` holds its last lines (the reader thread may lag behind the exit
    /// on a loaded machine). A process it left behind may hold stderr open: that wait is bounded
    /// and fails nothing.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let reading = self.stderr_gate.is_none();
                let deadline = Instant::now() + WAIT;
                while reading
                    && !self.stderr_closed.load(Ordering::Acquire)
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// GET `path` and parse the body as SSE.
    pub async fn events(&self, path: &str) -> Client {
        Client::connect(&self.url(path), &[]).await
    }

    /// GET `path` with extra request headers.
    pub async fn events_with(&self, path: &str, headers: &[(&str, &str)]) -> Client {
        Client::connect(&self.url(path), headers).await
    }

    /// Waits until `/stats` reports `count` consumers (a stream counts once its request is served).
    pub async fn wait_for_consumers(&self, count: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.stats().await;
            if stats["consumers"] == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "consumers never reached {count}: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `/stats` reports `value` for `key`; returns the whole stats object.
    pub async fn wait_for_stat(&self, key: &str, value: u64) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.stats().await;
            if stats[key] == value {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "{key} never reached {value}: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GET `path` and keep the body as raw bytes (to see comments, `retry:` frames, framing).
    pub async fn raw(&self, path: &str, headers: &[(&str, &str)]) -> RawClient {
        RawClient::connect(&self.url(path), headers).await
    }

    /// Makes the helpers (`stats`, `wait_for_consumers`...) ask with `http`.
    pub fn asking_with(mut self, http: reqwest::Client) -> Server {
        self.http = http;
        self
    }

    /// POST `body` to `path` with extra request headers; the whole answer.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self.http.post(self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = within("the answer to a POST", request.send())
            .await
            .expect("POST");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: within("the body of a POST's answer", response.text())
                .await
                .expect("the answer's body"),
        }
    }

    /// The text of `/metrics`, whatever its status.
    pub async fn metrics(&self) -> String {
        within("the answer to /metrics", async {
            let response = self.http.get(self.url("/metrics")).send().await;
            response
                .expect("GET /metrics")
                .text()
                .await
                .expect("/metrics")
        })
        .await
    }

    pub async fn stats(&self) -> serde_json::Value {
        let body = within("the answer to /stats", async {
            let response = self.http.get(self.url("/stats")).send().await;
            response.expect("GET /stats").text().await.expect("/stats")
        })
        .await;
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("/stats: {err}: {body:?}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- sse-broadcast stderr ---\n{}", self.stderr());
        }
    }
}

/// A new pseudo-terminal: its own end, and the far end (a terminal device) for a child.
fn pseudo_terminal() -> (std::os::fd::OwnedFd, std::fs::File) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("open a pseudo-terminal");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("a UTF-8 device path"))
        .expect("open the terminal");
    (master, slave)
}

/// GET `url` with extra request headers; the response head must come within `WAIT`.
async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    tls::get(&reqwest::Client::new(), url, headers).await
}

/// A complete (non-stream) answer.
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON (fails the test if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {self:?}"))
    }
}

type EventStream = std::pin::Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// One SSE client: a reqwest GET whose body goes through eventsource-stream.
pub struct Client {
    pub response_headers: reqwest::header::HeaderMap,
    pub status: reqwest::StatusCode,
    events: EventStream,
}

impl Client {
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Client {
        Client::from_response(get(url, headers).await)
    }

    /// Parses the body of a response a test got with a client of its own (TLS, HTTP/2).
    pub fn from_response(response: reqwest::Response) -> Client {
        let status = response.status();
        let response_headers = response.headers().clone();
        let events = response
            .bytes_stream()
            .eventsource()
            .map(|item| item.map_err(|err| err.to_string()))
            .boxed();
        Client {
            response_headers,
            status,
            events,
        }
    }

    /// The next event, or a test failure after `WAIT`.
    pub async fn next(&mut self) -> Event {
        self.next_within(WAIT).await
    }

    /// The next event, or a test failure after `within` (for what waits on a lease).
    pub async fn next_within(&mut self, within: Duration) -> Event {
        match tokio::time::timeout(within, self.events.next()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(err))) => panic!("stream error: {err}"),
            Ok(None) => panic!("stream ended early"),
            Err(_) => panic!("no event within {within:?}"),
        }
    }

    /// The next `count` events.
    pub async fn take(&mut self, count: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(self.next().await);
        }
        events
    }

    /// Asserts that the next event carries `data`, a sentinel the test published after the point
    /// it checks: anything sent before the sentinel that should not have been (a late
    /// duplicate, an event from another channel) comes first and fails the test. This stands in
    /// for "nothing arrives within N ms", which a late event passes.
    pub async fn next_is(&mut self, data: &str) -> Event {
        let event = self.next().await;
        assert_eq!(
            event.data, data,
            "the next event should be {data:?}: {event:?}"
        );
        event
    }

    /// Reads until the server ends the stream; returns the events received meanwhile.
    pub async fn until_end(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.events.next()).await {
                Ok(Some(Ok(event))) => events.push(event),
                Ok(Some(Err(err))) => panic!("stream error: {err}"),
                Ok(None) => return events,
                Err(_) => panic!("the stream did not end within {WAIT:?}"),
            }
        }
    }
}

/// `future`'s output, or a failure naming `what` once it has taken longer than `WAIT`: a test
/// fails with what it was waiting for, rather than hanging.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

/// Asks `done` every 20 ms until it holds; fails the test naming `what` after `within`. For
/// what a test cannot be told of (a file written by a child, a port another program opens).
pub fn poll_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The data of each event.
pub fn data(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.data.clone()).collect()
}

/// The id of each event.
pub fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// The data of each event in a decoded (de-chunked) body, parsed by eventsource-stream.
pub async fn body_data(body: &[u8]) -> Vec<String> {
    let chunks = [Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(
        body,
    ))];
    futures_util::stream::iter(chunks)
        .eventsource()
        .map(|event| event.unwrap().data)
        .collect()
        .await
}

/// `body` is `comment`, then `retry: N` with N in [5000, 7500] (the default 5 s Retry-After
/// spread up by at most half), and nothing else: a refusal an EventSource survives.
pub fn assert_refused_with_retry(body: &[u8], comment: &str) {
    let text = String::from_utf8_lossy(body);
    let retry = text
        .strip_prefix(comment)
        .and_then(|rest| rest.strip_prefix("retry: "))
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .and_then(|ms| ms.parse::<u64>().ok());
    assert!(
        retry.is_some_and(|ms| (5000..=7500).contains(&ms)),
        "{text:?}"
    );
}

/// A stream's answer on the lean path and on hyper's (each a head and a decoded body) to a
/// request with `headers`: the same heads but for the date, which the lean one has too, the
/// same bodies, and the events' data `expected`.
pub async fn assert_answered_alike(
    lean: (&Option<String>, &Vec<u8>),
    hyper: (&Option<String>, &Vec<u8>),
    expected: &[&str],
    headers: &str,
) {
    let (lean_head, hyper_head) = (lean.0.as_deref(), hyper.0.as_deref());
    assert_eq!(
        head_without_date(lean_head.expect("a head")),
        head_without_date(hyper_head.expect("a head")),
        "{headers:?}"
    );
    assert!(lean_head.unwrap().contains("\r\ndate: "));
    assert_eq!(lean.1, hyper.1, "{headers:?}");
    assert_eq!(body_data(lean.1).await, expected, "{headers:?}");
}

/// A response head without its date line, which changes by the second.
pub fn head_without_date(head: &str) -> String {
    head.split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// One client that keeps the response body as bytes, unparsed.
pub struct RawClient {
    pub status: reqwest::StatusCode,
    /// Everything received so far.
    pub received: Vec<u8>,
    body: ByteStream,
    ended: bool,
}

impl RawClient {
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> RawClient {
        let response = get(url, headers).await;
        RawClient {
            status: response.status(),
            received: Vec::new(),
            body: response.bytes_stream().boxed(),
            ended: false,
        }
    }

    /// Reads until `found(received)` holds, or fails the test after `WAIT` or at the end of
    /// the body. Returns everything received.
    pub async fn read_until(&mut self, what: &str, found: impl Fn(&[u8]) -> bool) -> &[u8] {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !found(&self.received) {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.received.extend_from_slice(&chunk),
                Ok(Some(Err(err))) => panic!("body error while waiting for {what}: {err}"),
                Ok(None) => panic!("the body ended before {what}: {:?}", self.text()),
                Err(_) => panic!("no {what} within {WAIT:?}: {:?}", self.text()),
            }
        }
        &self.received
    }

    /// Reads until `received` contains `needle`.
    pub async fn read_until_contains(&mut self, needle: &str) -> &[u8] {
        self.read_until(needle, |received| count(received, needle) > 0)
            .await
    }

    /// Reads until the server ends the body (or fails the test after `WAIT`).
    pub async fn until_end(&mut self) -> &[u8] {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.ended {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.received.extend_from_slice(&chunk),
                Ok(Some(Err(err))) => panic!("body error: {err}"),
                Ok(None) => self.ended = true,
                Err(_) => panic!("the body did not end within {WAIT:?}"),
            }
        }
        &self.received
    }

    /// The body so far as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`, ...), in KiB, for any process.
/// Sends the signal `name` (`TERM`, `HUP`, `KILL`) to the process `pid` with `kill`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"))
}

/// CPU time (user + system) the process `pid` has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The command name may hold spaces: fields are counted after its closing parenthesis,
    // where field 3 (state) comes first; utime and stime are fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// How often `needle` occurs in `haystack` (non-overlapping).
pub fn count(haystack: &[u8], needle: &str) -> usize {
    let needle = needle.as_bytes();
    let (mut found, mut at) = (0, 0);
    while let Some(i) = haystack[at..]
        .windows(needle.len())
        .position(|window| window == needle)
    {
        found += 1;
        at += i + needle.len();
    }
    found
}

pub fn server_address(server: &Server) -> SocketAddr {
    server
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

/// An HTTP/1.1 client on a plain socket: it reads only when told to, so it can stall, crawl or
/// reset. `receive_buffer` caps SO_RCVBUF (set before connecting, so the kernel won't grow it).
pub struct TcpClient {
    pub stream: TcpStream,
    /// Bytes read and not yet decoded (head, chunk framing).
    pub raw: Vec<u8>,
    pub head: Option<String>,
    /// The decoded (de-chunked) body so far.
    pub body: Vec<u8>,
}

impl TcpClient {
    pub fn get(server: &Server, path: &str, receive_buffer: Option<usize>) -> TcpClient {
        let address = server_address(server);
        let socket = Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .unwrap();
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.connect(&address.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        TcpClient {
            stream,
            raw: Vec::new(),
            head: None,
            body: Vec::new(),
        }
    }

    /// Connects and sends `request` as it is, `piece` bytes per write with `pause` between
    /// writes (a client that trickles its head), then reads a chunked response like `get`.
    pub fn send(server: &Server, request: &[u8], piece: usize, pause: Duration) -> TcpClient {
        let mut stream = TcpStream::connect(server_address(server)).unwrap();
        stream.set_nodelay(true).unwrap();
        for (i, bytes) in request.chunks(piece).enumerate() {
            if i > 0 {
                std::thread::sleep(pause);
            }
            stream.write_all(bytes).unwrap();
        }
        TcpClient {
            stream,
            raw: Vec::new(),
            head: None,
            body: Vec::new(),
        }
    }

    /// Reads until the decoded body contains `needle` (fails the test after `WAIT` or at the end).
    pub fn read_until_body_contains(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while count(&self.body, needle) == 0 {
            assert!(Instant::now() < deadline, "no {needle:?} within {WAIT:?}");
            let read = self.read_some(64 * 1024).unwrap();
            assert!(
                read > 0,
                "the connection ended before {needle:?}: {:?}",
                String::from_utf8_lossy(&self.body)
            );
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// One `read` of at most `max` bytes (waits up to `WAIT`); `Ok(0)` at the end.
    pub fn read_some(&mut self, max: usize) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(WAIT))?;
        let mut buffer = vec![0; max];
        let n = self.stream.read(&mut buffer)?;
        self.raw.extend_from_slice(&buffer[..n]);
        self.decode();
        Ok(n)
    }

    /// Moves what `raw` holds into `head` and `body`, undoing the chunked encoding.
    fn decode(&mut self) {
        if self.head.is_none() {
            let Some(end) = find(&self.raw, b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
            assert!(
                head.to_ascii_lowercase()
                    .contains("transfer-encoding: chunked"),
                "{head}"
            );
            self.head = Some(head);
            self.raw.drain(..end + 4);
        }
        loop {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size_text = std::str::from_utf8(&self.raw[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {size_text:?}"));
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return;
            }
            self.body.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
        }
    }

    /// Resets the connection (RST instead of FIN): SO_LINGER 0, then close.
    pub fn reset(self) {
        SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(self.stream);
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// An HS256 token signed with `secret` for the user `sub`, who may read `subscribe`, valid
/// for a minute.
pub fn user_token(secret: &str, sub: &str, subscribe: &[&str]) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let claims =
        serde_json::json!({"exp": exp, "sub": sub, "sse_broadcast": {"subscribe": subscribe}});
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}
