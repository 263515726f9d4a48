//! A master, a replica and three Sentinels (quorum 2, `down-after-milliseconds` 1000) from
//! Debian's redis-server, on free loopback ports, for the failover tests: optionally with a
//! password (`requirepass` and `masterauth` on both servers, `sentinel auth-pass` on the
//! Sentinels). Everything is killed on drop; `kill_master` is `kill -9`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::WAIT;
use super::redis::{free_port, wait_for_port};

pub const MASTER_NAME: &str = "themaster";

pub struct SentinelSet {
    _dir: tempfile::TempDir,
    password: Option<String>,
    master: Node,
    replica: Node,
    sentinels: Vec<Node>,
}

struct Node {
    child: Option<Child>,
    port: u16,
}

impl Node {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for node in self.sentinels.iter_mut() {
            node.kill();
        }
        self.master.kill();
        self.replica.kill();
    }
}

impl SentinelSet {
    pub fn start(password: Option<&str>) -> SentinelSet {
        let dir = tempfile::tempdir().unwrap();
        let master_port = free_port();
        let master = server(dir.path(), password, master_port, None);
        let replica_port = free_port();
        let replica = server(dir.path(), password, replica_port, Some(master_port));
        let mut set = SentinelSet {
            password: password.map(str::to_owned),
            master,
            replica,
            sentinels: Vec::new(),
            _dir: dir,
        };
        set.wait_until("the replica is in sync", |set| {
            set.cli(set.replica.port, &["INFO", "replication"])
                .contains("master_link_status:up")
        });
        for index in 0..3 {
            let port = free_port();
            let config = set._dir.path().join(format!("sentinel-{index}.conf"));
            let child = sentinel(&config, port, master_port, password);
            set.sentinels.push(Node {
                child: Some(child),
                port,
            });
        }
        // Every Sentinel knows the replica and the two other Sentinels before anything fails.
        set.wait_until("the Sentinels know each other and the replica", |set| {
            set.sentinels.iter().all(|sentinel| {
                let replicas = set.cli(sentinel.port, &["SENTINEL", "REPLICAS", MASTER_NAME]);
                let others = set.cli(sentinel.port, &["SENTINEL", "SENTINELS", MASTER_NAME]);
                replicas.contains(&replica_port.to_string())
                    && set
                        .sentinels
                        .iter()
                        .filter(|s| s.port != sentinel.port)
                        .all(|other| others.contains(&other.port.to_string()))
            })
        });
        set
    }

    /// `redis-sentinel://[:PASSWORD@]127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3#themaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        let auth = match &self.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        format!("redis-sentinel://{auth}{}#{MASTER_NAME}", hosts.join(","))
    }

    pub fn master_port(&self) -> u16 {
        self.master.port
    }

    /// `kill -9` of the master: no goodbye to its clients, its replica or the Sentinels.
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// The port of the master the Sentinels name, once it is not `old`.
    pub fn wait_for_new_master(&self, old: u16) -> u16 {
        let mut port = 0;
        self.wait_until("the Sentinels promote the replica", |set| {
            let answer = set.cli(
                set.sentinels[0].port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
            );
            port = answer
                .lines()
                .nth(1)
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0);
            port != 0 && port != old
        });
        port
    }

    /// `redis-cli` against one of the set's servers (with the password for a data server).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        let is_sentinel = self.sentinels.iter().any(|sentinel| sentinel.port == port);
        if let (Some(password), false) = (&self.password, is_sentinel) {
            command.args(["--no-auth-warning", "-a", password]);
        }
        match command.args(args).stderr(Stdio::null()).output() {
            Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
            Err(err) => panic!("redis-cli: {err}"),
        }
    }

    fn wait_until(&self, what: &str, mut done: impl FnMut(&SentinelSet) -> bool) {
        super::poll_until(what, 2 * WAIT, || done(self));
    }
}

fn server(dir: &Path, password: Option<&str>, port: u16, replica_of: Option<u16>) -> Node {
    let mut command = Command::new("redis-server");
    // A replica writes the RDB it syncs from: into the test's directory, not the crate's.
    command.arg("--dir").arg(dir);
    command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
    command.args(["--save", "", "--appendonly", "no"]);
    if let Some(password) = password {
        command.args(["--requirepass", password, "--masterauth", password]);
    }
    if let Some(master) = replica_of {
        command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (the Debian package redis-server) is installed");
    wait_for_port(port);
    Node {
        child: Some(child),
        port,
    }
}

fn sentinel(config: &Path, port: u16, master: u16, password: Option<&str>) -> Child {
    let mut text = format!(
        "port {port}\nbind 127.0.0.1\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
         sentinel failover-timeout {MASTER_NAME} 10000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n"
    );
    if let Some(password) = password {
        text += &format!("sentinel auth-pass {MASTER_NAME} {password}\n");
    }
    std::fs::write(config, text).unwrap();
    let child = Command::new("redis-server")
        .arg(config)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server --sentinel (the Debian package redis-sentinel's server) runs");
    wait_for_port(port);
    child
}
