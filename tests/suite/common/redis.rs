//! A real redis-server (the Debian package) for the scale-out tests: started on a free
//! loopback port without persistence (`--save "" --appendonly no`), so a restart comes back
//! empty, and killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

use super::{RawClient, Server, WAIT};

/// The header that publishes to an `instance` (its `--publish-token` is `t`).
pub const AUTH: (&str, &str) = ("Authorization", "Bearer t");

/// An instance on `redis` with POST publishing (`AUTH`), quiet unless `extra` tells it to tick
/// or read stdin.
pub fn instance(redis: &Redis, extra: &[&str]) -> Server {
    instance_at(&redis.url(), extra)
}

/// `--redis URL` with a bad `url` is a usage error (exit 2) naming `--redis`, whose message shows
/// the URL as `shown` (the password masked) and never the password `hunter2`.
pub fn assert_bad_url_masked(url: &str, shown: &str) {
    let output = Command::new(super::BIN)
        .args(["--redis", url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--redis"), "{stderr}");
    assert!(stderr.contains(shown), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// `instance` on the Redis (or Sentinel) URL `url`.
pub fn instance_at(url: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--redis", url, "--publish-token", "t"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// An instance of the TLS `url` (`rediss://`, `rediss-cluster://`) with POST publishing
/// (`AUTH`), trusting `ca` besides the system roots (`SSL_CERT_FILE`, as OpenSSL does), or
/// those alone.
pub fn over_tls(url: &str, ca: Option<&Path>) -> Command {
    let mut command = Command::new(super::BIN);
    command.args(["--port", "0", "--redis", url, "--publish-token", "t"]);
    match ca {
        Some(ca) => command.env("SSL_CERT_FILE", ca),
        None => command.env_remove("SSL_CERT_FILE"),
    };
    command
}

/// What an instance of the TLS `url` trusting the system roots alone says as it exits 1: the
/// test's CA is one nobody vouches for.
pub fn refusal_of_an_unknown_certificate(url: &str) -> String {
    let untrusted = over_tls(url, None).output().unwrap();
    assert_eq!(
        untrusted.status.code(),
        Some(1),
        "a certificate nobody vouches for: {untrusted:?}"
    );
    String::from_utf8_lossy(&untrusted.stderr).into_owned()
}

pub struct Redis {
    child: Option<Child>,
    port: u16,
    /// With TLS: the certificate and key files, and the CA a client must trust.
    tls: Option<Tls>,
}

pub struct Tls {
    /// Holds the files.
    dir: tempfile::TempDir,
    pub ca: PathBuf,
}

impl Tls {
    /// A CA made here (`ca.pem`) and a certificate it signed for 127.0.0.1 (`server.pem`,
    /// `server.key`), which a node also shows as a client (a cluster's bus, replication).
    pub fn make() -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Names of their own: OpenSSL (redis-cli, the nodes among themselves) takes a
        // certificate whose subject is its issuer's for a self-signed one, and refuses it.
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sse-broadcast test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let cert = params
            .signed_by(&key, &Issuer::new(ca_params, ca_key))
            .unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Tls { dir, ca }
    }

    /// The path of one of its files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Redis {
    pub fn start() -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(),
            tls: None,
        };
        redis.launch();
        redis
    }

    /// A server that speaks only TLS, with a certificate for 127.0.0.1 from a CA made here
    /// (`tls().ca`: point `SSL_CERT_FILE` at it).
    pub fn start_tls() -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(),
            tls: Some(Tls::make()),
        };
        redis.launch();
        redis
    }

    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against the server (as an operator, or an attacker, would) and returns
    /// what it printed.
    pub fn cli<A: AsRef<std::ffi::OsStr> + std::fmt::Debug>(&self, args: &[A]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (the Debian package redis-tools) is installed");
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Kills the server (its data is gone: nothing is persisted).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(tls) => {
                let file = |name: &str| tls.file(name);
                command
                    .args([
                        "--port",
                        "0",
                        "--tls-port",
                        &port,
                        "--tls-auth-clients",
                        "no",
                    ])
                    .arg("--tls-cert-file")
                    .arg(file("server.pem"))
                    .arg("--tls-key-file")
                    .arg(file("server.key"))
                    .arg("--tls-ca-cert-file")
                    .arg(&tls.ca)
            }
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (the Debian package redis-server) is installed");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while !self.answers_ping() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ready: answers PING (or, with TLS, takes connections).
    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls.is_some() {
            return true;
        }
        let mut reply = [0; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

/// A port the kernel just handed out and took back: free, as far as anyone can tell.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until something listens on `port` (a Redis node or Sentinel just started).
pub fn wait_for_port(port: u16) {
    super::poll_until(&format!("something listening on {port}"), WAIT, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// One SSE frame of a raw body: its id, its data and the comments before it (what a reader
/// got across a failover).
#[derive(Debug)]
struct Frame {
    id: Option<u64>,
    data: String,
    comments: Vec<String>,
}

fn frames(text: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    for block in text.split("\n\n").filter(|block| !block.is_empty()) {
        let mut frame = Frame {
            id: None,
            data: String::new(),
            comments: Vec::new(),
        };
        for line in block.lines() {
            if let Some(id) = line.strip_prefix("id: ") {
                frame.id = id.parse().ok();
            } else if let Some(data) = line.strip_prefix("data: ") {
                frame.data = data.to_owned();
            } else if let Some(comment) = line.strip_prefix(':') {
                frame.comments.push(comment.trim().to_owned());
            }
        }
        frames.push(frame);
    }
    frames
}

/// Reads `reader` up to the last of `stored` (the lines a failover test's POSTs stored), and
/// checks what it got across the failover: ids only ever rise, and each stored line was
/// delivered, or a comment told the reader that events were lost. Returns whether one was.
pub async fn delivered_or_told(reader: &mut RawClient, stored: &[String]) -> bool {
    let last = stored.last().expect("a stored line");
    reader.read_until_contains(&format!("data: {last}\n")).await;
    let frames = frames(&reader.text());
    let ids: Vec<u64> = frames.iter().filter_map(|frame| frame.id).collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids went backwards: {ids:?}"
    );
    let told = frames
        .iter()
        .any(|frame| frame.comments.iter().any(|c| c.contains("were lost")));
    let delivered: Vec<&str> = frames.iter().map(|frame| frame.data.as_str()).collect();
    let missing: Vec<&String> = stored
        .iter()
        .filter(|line| !delivered.contains(&line.as_str()))
        .collect();
    assert!(
        missing.is_empty() || told,
        "stored but neither delivered nor told: {missing:?}"
    );
    told
}

/// POSTs `body` to `channel` of an `instance`; it must be taken.
pub async fn post(server: &Server, channel: &str, body: &str) {
    let answer = server
        .post(&format!("/events/{channel}"), &[AUTH], body.to_owned())
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// What an instance of `url`, which nothing answers, says as it exits 1 at start: that it
/// cannot reach Redis, naming `--redis`.
pub fn unreachable_at_start(url: &str) -> String {
    let output = Command::new(super::BIN)
        .args(["--redis", url, "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains("cannot reach Redis") && stderr.contains("--redis"),
        "{stderr}"
    );
    stderr
}
