//! For the `listen` tests: the binary as a listener (`sse-broadcast listen ARGS`, its stdout and
//! stderr captured), a scripted HTTP server that answers each connection as the test says, and
//! a TCP proxy that can cut every connection through it. Every wait is bounded by `WAIT`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{BIN, WAIT};

/// `sse-broadcast listen ...` running, killed on drop.
pub struct Listener {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stdout_closed: Arc<AtomicBool>,
    stderr: Arc<Mutex<String>>,
}

impl Listener {
    /// Starts `sse-broadcast listen ARGS` (stdin at /dev/null, logs plain).
    pub fn start(args: &[&str]) -> Listener {
        let mut command = Command::new(BIN);
        command
            .arg("listen")
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("SSE_BROADCAST_LISTEN_TOKEN")
            .env_remove("SSE_BROADCAST_LISTEN_USER");
        Listener::spawn(command)
    }

    /// Starts a command whose stdout and stderr are captured (`sh -c '... | ...'`), with the
    /// environment the test gave it.
    pub fn spawn(mut command: Command) -> Listener {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1");
        for proxy in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            command.env_remove(proxy);
        }
        let mut child = command.spawn().expect("spawn sse-broadcast listen");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stdout_closed = Arc::new(AtomicBool::new(false));
        let (into, closed) = (stdout.clone(), stdout_closed.clone());
        let mut pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buffer = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                into.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
            closed.store(true, Ordering::Release);
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let into = stderr.clone();
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buffer = vec![0; 16 * 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Listener {
            child,
            stdout,
            stdout_closed,
            stderr,
        }
    }

    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stdout satisfies `done`; returns it, or fails the test with both outputs.
    pub fn wait_stdout(&self, what: &str, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        wait_until(what, || {
            let out = self.stdout();
            done(&out).then_some(out)
        })
        .unwrap_or_else(|| panic!("{}", self.report(what)))
    }

    /// Waits until stdout holds `count` records ending with `end`; returns them.
    pub fn wait_records(&self, count: usize, end: u8) -> Vec<String> {
        let out = self.wait_stdout(&format!("{count} records"), |out| {
            out.iter().filter(|&&b| b == end).count() >= count
        });
        records(&out, end)
    }

    /// Waits until stderr holds `needle`.
    pub fn wait_stderr(&self, needle: &str) -> String {
        wait_until(needle, || {
            let log = self.stderr();
            log.contains(needle).then_some(log)
        })
        .unwrap_or_else(|| panic!("{}", self.report(needle)))
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        super::signal(self.pid(), name);
    }

    /// Waits for the exit, then for stdout to close; fails the test after `WAIT`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let status = wait_until("the exit", || self.child.try_wait().unwrap());
        let status = status.unwrap_or_else(|| panic!("{}", self.report("an exit")));
        wait_until("stdout closed", || {
            self.stdout_closed.load(Ordering::Acquire).then_some(())
        });
        std::thread::sleep(Duration::from_millis(50)); // the stderr reader's last lines
        status
    }

    /// Waits for the exit and checks its code.
    pub fn expect_exit(&mut self, code: i32) {
        let status = self.wait_exit();
        assert_eq!(
            status.code(),
            Some(code),
            "{}",
            self.report("the exit code")
        );
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn report(&self, what: &str) -> String {
        format!(
            "waiting for {what}; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&self.stdout()),
            self.stderr()
        )
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("listener stderr:\n{}", self.stderr());
        }
    }
}

/// `out` split into records ending with `end` (a last one without its end is left out).
pub fn records(out: &[u8], end: u8) -> Vec<String> {
    let mut records: Vec<String> = out
        .split(|&b| b == end)
        .map(|record| String::from_utf8(record.to_vec()).expect("UTF-8 output"))
        .collect();
    records.pop();
    records
}

/// Polls `check` until it gives a value, for at most `WAIT`.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            eprintln!("gave up waiting for {what}");
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The request heads a scripted server or a proxy saw, in order.
pub type Heads = Arc<Mutex<Vec<String>>>;

/// The value of header `name` in a request head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Reads a request head (up to the blank line) from `stream`.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// An HTTP server on a free port that answers the Nth connection (from 0) with what `answer`
/// returns for it and its request head, then closes it.
pub struct Scripted {
    pub port: u16,
    pub heads: Heads,
}

impl Scripted {
    pub fn start(answer: impl Fn(usize, &str) -> Vec<u8> + Send + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads: Heads = Arc::default();
        let seen = heads.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let Some(head) = read_head(&mut stream) else {
                    continue;
                };
                seen.lock().unwrap().push(head.clone());
                let _ = stream.write_all(&answer(n, &head));
                let _ = stream.shutdown(Shutdown::Both);
            }
        });
        Scripted { port, heads }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Waits until `count` connections were answered.
    pub fn wait_connections(&self, count: usize) -> Vec<String> {
        wait_until(&format!("{count} connections"), || {
            let heads = self.heads();
            (heads.len() >= count).then_some(heads)
        })
        .unwrap_or_else(|| panic!("{count} connections never came: {:?}", self.heads()))
    }
}

/// A `200 text/event-stream` answer with `body`, closed after it.
pub fn sse_answer(body: &[u8]) -> Vec<u8> {
    let mut answer =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_vec();
    answer.extend_from_slice(body);
    answer
}

/// An answer with `status` (e.g. `404 Not Found`), extra header lines and no body.
pub fn status_answer(status: &str, headers: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

/// A TCP proxy to `target` that records each connection's request head and can cut every
/// connection open through it.
pub struct CuttingProxy {
    pub port: u16,
    pub heads: Heads,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl CuttingProxy {
    pub fn start(target: &str) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads: Heads = Arc::default();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (seen, live, target) = (heads.clone(), open.clone(), target.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = TcpStream::connect(&target) else {
                    continue;
                };
                let Some(head) = read_head(&mut client) else {
                    continue;
                };
                seen.lock().unwrap().push(head.clone());
                if server.write_all(head.as_bytes()).is_err() {
                    continue;
                }
                live.lock().unwrap().push(client.try_clone().unwrap());
                live.lock().unwrap().push(server.try_clone().unwrap());
                let (mut from_client, mut to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_client, &mut to_server);
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.shutdown(Shutdown::Both);
                });
            }
        });
        CuttingProxy { port, heads, open }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Cuts every connection open through the proxy, both ways.
    pub fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Waits until `count` connections came through.
    pub fn wait_connections(&self, count: usize) -> Vec<String> {
        wait_until(&format!("{count} connections"), || {
            let heads = self.heads();
            (heads.len() >= count).then_some(heads)
        })
        .unwrap_or_else(|| panic!("{count} connections never came: {:?}", self.heads()))
    }
}
