//! A real redis-server (the Debian package) for the scale-out tests: started on a free
//! loopback port without persistence (`--save "" --appendonly no`), so a restart comes back
//! empty, and killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

use super::{Server, WAIT};

/// The header that publishes to an `instance` (its `--publish-token` is `t`).
pub const AUTH: (&str, &str) = ("Authorization", "Bearer t");

/// An instance on `redis` with POST publishing (`AUTH`), quiet unless `extra` tells it to tick
/// or read stdin.
pub fn instance(redis: &Redis, extra: &[&str]) -> Server {
    instance_at(&redis.url(), extra)
}

/// `instance` on the Redis (or Sentinel) URL `url`.
pub fn instance_at(url: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--redis", url, "--publish-token", "t"];
    args.extend_from_slice(extra);
    Server::start(&args)
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
