//! Socket activation (DESIGN.md §16) under Debian's `systemd-socket-activate` (package
//! systemd): the server serves on the socket it is passed and binds nothing, and a restart loses
//! no connection: one made while no process runs waits in the socket's queue for the next.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::redis::free_port;
use common::{BIN, Input, Server, WAIT};

/// `systemd-socket-activate` on a free loopback port (it takes no port 0), running `program`
/// once the first connection comes, as systemd starts a socket-activated service: the server
/// starts with that connection (`first_connection`) in its queue.
fn activated(program: &[&str]) -> Server {
    // This module's turn is taken before the thread starts counting down its wait for the
    // first connection: `Server::spawn` would otherwise wait for the turn (another module's
    // servers) while that thread's time runs out with no activator listening yet.
    let _turn = common::turn::Turn::take();
    let port = free_port();
    let mut command = Command::new("systemd-socket-activate");
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(program);
    let first = std::thread::spawn(move || first_connection(port));
    let server = Server::spawn(command, Input::Null);
    let answer = first.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer:?}");
    server
}

/// Asks `/healthz` on `port` as soon as something listens there: the answer.
fn first_connection(port: u16) -> String {
    let deadline = Instant::now() + WAIT;
    let mut socket = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(socket) => break socket,
            Err(err) => assert!(Instant::now() < deadline, "nothing listens: {err}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    answer
}

/// The process ids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let list =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect()
}

fn is_alive(pid: u32) -> bool {
    std::fs::metadata(format!("/proc/{pid}")).is_ok()
}

/// The server a restart loop runs, waited for; the loop's shell is `supervisor`.
fn running_server(supervisor: u32) -> u32 {
    let deadline = Instant::now() + WAIT;
    loop {
        let running = children(supervisor).into_iter().find(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.to_string_lossy() == BIN)
        });
        if let Some(pid) = running {
            return pid;
        }
        assert!(Instant::now() < deadline, "no server under the loop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A restart loop under the activator, as systemd restarts a service while its socket unit
/// holds the socket: the shell keeps the socket, each run of the server gets it (with
/// `LISTEN_PID` set to its own pid, as systemd sets it), and a second passes between runs.
struct Supervised {
    server: Option<Server>,
}

impl Supervised {
    fn start(args: &[&str]) -> Supervised {
        let script =
            r#"while :; do sh -c 'export LISTEN_PID=$$; exec "$@"' sh "$@"; sleep 1; done"#;
        let mut program = vec!["sh", "-c", script, "sh", BIN];
        program.extend_from_slice(args);
        Supervised {
            server: Some(activated(&program)),
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let server = self.server.take().unwrap();
        let running = children(server.pid());
        drop(server); // the loop first, so it starts nothing more
        for pid in running {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test]
async fn serves_on_the_passed_socket_and_binds_nothing() {
    // An address this machine does not have: binding it would fail.
    let server = activated(&[
        BIN,
        "--bind",
        "203.0.113.1",
        "-i",
        "50ms",
        "-m",
        "tick {seq}",
    ]);
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    server.wait_for_log("serving on the sockets systemd passed");
    let mut client = server.events("/events").await;
    assert!(client.next().await.data.starts_with("tick "));
    // The Host check follows the passed socket: loopback, so a foreign name is refused.
    let foreign = common::tls::get(
        &reqwest::Client::new(),
        &server.url("/stats"),
        &[("Host", "evil.example")],
    )
    .await;
    assert_eq!(foreign.status(), 403);
}

#[tokio::test]
async fn a_connection_made_during_a_restart_is_served_by_the_next_process() {
    let supervised = Supervised::start(&["-i", "50ms", "-m", "tick {seq}"]);
    let server = supervised.server();
    let mut before = server.events("/events").await;
    assert!(before.next().await.data.starts_with("tick "));
    let old = running_server(server.pid());
    let status = Command::new("kill")
        .args(["-TERM", &old.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + WAIT;
    while is_alive(old) {
        assert!(Instant::now() < deadline, "the server did not stop");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // No process runs now (the loop sleeps a second): the connection waits in the queue.
    let mut during = server.events("/events").await;
    assert_eq!(during.status, 200);
    assert!(during.next().await.data.starts_with("tick "));
    let new = running_server(server.pid());
    assert_ne!(new, old);
    assert_eq!(
        server
            .stderr()
            .matches("listening on http://127.0.0.1:")
            .count(),
        2,
        "{}",
        server.stderr()
    );
}
