//! A Redis Cluster for the tests: six redis-server nodes from Debian's package (3 masters, 3
//! replicas) on free loopback ports, each with its bus port chosen apart (`--cluster-port`),
//! joined by `redis-cli --cluster create`; `cluster-node-timeout` 1000 so a failover takes a
//! few seconds, and `cluster-require-full-coverage no` so a dead master stops only its own
//! slots. Optionally with a password (`requirepass` and `masterauth` on every node), or over
//! TLS alone (`start_tls`: clients, the cluster bus and replication, with a CA made here).
//! Nothing is persisted; every node is killed on drop, `kill` is `kill -9`, and `restart`
//! brings a node back with its `nodes.conf` (so it rejoins as what it was), empty.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use super::WAIT;
use super::redis::{Tls, wait_for_port};

pub struct Cluster {
    dir: tempfile::TempDir,
    password: Option<String>,
    tls: Option<Tls>,
    nodes: Vec<Node>,
}

struct Node {
    child: Option<Child>,
    port: u16,
    bus: u16,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A node's line of `CLUSTER NODES`.
#[derive(Debug)]
pub struct Line {
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// The slots it serves, as ranges.
    pub slots: Vec<(u16, u16)>,
}

impl Cluster {
    pub fn start(password: Option<&str>) -> Cluster {
        Cluster::launch(password, None)
    }

    /// Nodes that speak only TLS (`tls().ca` is the CA to trust: `SSL_CERT_FILE`).
    pub fn start_tls() -> Cluster {
        Cluster::launch(None, Some(Tls::make()))
    }

    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    fn launch(password: Option<&str>, tls: Option<Tls>) -> Cluster {
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            password: password.map(str::to_owned),
            tls,
            nodes: Vec::new(),
        };
        // Twelve ports (six nodes, six buses) held at once, so none is handed out twice.
        let held: Vec<TcpListener> = (0..12)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports: Vec<u16> = held
            .iter()
            .map(|listener| listener.local_addr().unwrap().port())
            .collect();
        drop(held);
        for pair in ports.chunks(2) {
            let child = cluster.server(pair[0], pair[1]);
            cluster.nodes.push(Node {
                child: Some(child),
                port: pair[0],
                bus: pair[1],
            });
        }
        for node in &cluster.nodes {
            wait_for_port(node.port);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut create = Command::new("redis-cli");
        if let Some(tls) = &cluster.tls {
            create.arg("--tls").arg("--cacert").arg(&tls.ca);
        }
        create.arg("--cluster").arg("create").args(&addresses);
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        if let Some(password) = &cluster.password {
            create.args(["--no-auth-warning", "-a", password]);
        }
        let output = create.output().expect("redis-cli is installed");
        assert!(
            output.status.success(),
            "redis-cli --cluster create: {output:?}"
        );
        cluster.wait_until("the cluster is up, every replica in sync", |cluster| {
            cluster.nodes.iter().all(|node| {
                let info = cluster.cli(node.port, &["CLUSTER", "INFO"]);
                let replication = cluster.cli(node.port, &["INFO", "replication"]);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_known_nodes:6")
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            })
        });
        cluster
    }

    fn server(&self, port: u16, bus: u16) -> Child {
        let mut command = Command::new("redis-server");
        command.arg("--dir").arg(self.dir.path());
        match &self.tls {
            None => command.args(["--port", &port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
                .args(["--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(tls.file("server.pem"))
                .arg("--tls-key-file")
                .arg(tls.file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca),
        };
        command.args(["--bind", "127.0.0.1"]);
        command.args(["--cluster-enabled", "yes"]);
        command.args(["--cluster-port", &bus.to_string()]);
        command.args(["--cluster-config-file", &format!("nodes-{port}.conf")]);
        command.args(["--cluster-node-timeout", "1000"]);
        command.args(["--cluster-require-full-coverage", "no"]);
        command.args(["--save", "", "--appendonly", "no"]);
        if let Some(password) = &self.password {
            command.args(["--requirepass", password, "--masterauth", password]);
        }
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (the Debian package redis-server) is installed")
    }

    /// `redis-cluster://[:PASSWORD@]` (`rediss-cluster://` with TLS) and three of the nodes
    /// (seeds: the client finds the rest).
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.nodes[..3]
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let auth = match &self.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        let scheme = match self.tls {
            Some(_) => "rediss-cluster",
            None => "redis-cluster",
        };
        format!("{scheme}://{auth}{}", seeds.join(","))
    }

    /// The ports of the nodes still running.
    pub fn live_ports(&self) -> Vec<u16> {
        let live = self.nodes.iter().filter(|node| node.child.is_some());
        live.map(|node| node.port).collect()
    }

    /// `redis-cli` against one node (with the password), what it printed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(tls) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(&tls.ca);
        }
        if let Some(password) = &self.password {
            command.args(["--no-auth-warning", "-a", password]);
        }
        match command.args(args).stderr(Stdio::null()).output() {
            Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
            Err(err) => panic!("redis-cli: {err}"),
        }
    }

    /// `CLUSTER NODES` as a live node sees it.
    pub fn lines(&self) -> Vec<Line> {
        let port = self.live_ports()[0];
        let text = self.cli(port, &["CLUSTER", "NODES"]);
        text.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let address = fields.get(1)?.split('@').next()?;
                let port = address.rsplit(':').next()?.parse().ok()?;
                let flags = fields.get(2)?;
                let slots = fields[8.min(fields.len())..]
                    .iter()
                    .filter(|range| !range.starts_with('['))
                    .filter_map(|range| match range.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => range.parse().ok().map(|slot| (slot, slot)),
                    })
                    .collect();
                Some(Line {
                    port,
                    master: flags.contains("master"),
                    failed: flags.split(',').any(|flag| flag == "fail"),
                    slots,
                })
            })
            .collect()
    }

    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let text = self.cli(port, &["CLUSTER", "KEYSLOT", key]);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT: {text:?}"))
    }

    /// The port of the master serving `slot`, as the cluster says now.
    pub fn master_of_slot(&self, slot: u16) -> Option<u16> {
        self.lines()
            .into_iter()
            .find(|line| {
                line.master
                    && !line.failed
                    && line.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .map(|line| line.port)
    }

    /// Channel names (`c0`, `c1`, ...), the first found on each master in turn, for
    /// `--redis-prefix` `prefix`.
    pub fn channels_on_each_master(&self, prefix: &str) -> Vec<String> {
        let masters: Vec<u16> = {
            let mut masters: Vec<u16> = self
                .lines()
                .iter()
                .filter(|line| line.master && !line.slots.is_empty())
                .map(|line| line.port)
                .collect();
            masters.sort();
            masters
        };
        let mut found: Vec<Option<String>> = vec![None; masters.len()];
        for n in 0.. {
            let name = format!("c{n}");
            let slot = self.slot_of(&format!("{prefix}:{{{name}}}:seq"));
            let master = self.master_of_slot(slot).unwrap();
            let index = masters.iter().position(|port| *port == master).unwrap();
            found[index].get_or_insert(name);
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        found.into_iter().map(Option::unwrap).collect()
    }

    /// `kill -9` of a node.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap();
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its ports, with its `nodes.conf`: it rejoins the cluster
    /// as what the others last knew it to be.
    pub fn restart(&mut self, port: u16) {
        let index = self
            .nodes
            .iter()
            .position(|node| node.port == port)
            .unwrap();
        if self.nodes[index].child.is_none() {
            let child = self.server(port, self.nodes[index].bus);
            self.nodes[index].child = Some(child);
        }
        wait_for_port(port);
    }

    /// Waits until another master serves `slot` than `old`, and the cluster says it is ok.
    pub fn wait_for_new_master(&self, slot: u16, old: u16) -> u16 {
        let mut new = 0;
        self.wait_until("a replica is promoted", |cluster| {
            new = cluster.master_of_slot(slot).unwrap_or(old);
            let port = cluster.live_ports()[0];
            new != old
                && cluster
                    .cli(port, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")
        });
        new
    }

    /// Moves `slot` (and its keys) from its master to the master on port `to`, as
    /// `redis-cli --cluster reshard` does: importing, migrating, MIGRATE, then the new owner.
    pub fn move_slot(&self, slot: u16, to: u16) {
        let from = self.master_of_slot(slot).unwrap();
        let id = |port| self.cli(port, &["CLUSTER", "MYID"]).trim().to_owned();
        let (from_id, to_id) = (id(from), id(to));
        let slot = slot.to_string();
        self.cli(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        self.cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
        loop {
            let keys = self.cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|key| !key.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let to_port = to.to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000"];
            if let Some(password) = &self.password {
                migrate.extend(["AUTH", password.as_str()]);
            }
            migrate.push("KEYS");
            migrate.extend(keys);
            let answer = self.cli(from, &migrate);
            assert!(answer.contains("OK"), "MIGRATE: {answer}");
        }
        for port in [to, from] {
            self.cli(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        }
        self.wait_until("every node knows the slot's new owner", |cluster| {
            cluster.master_of_slot(slot.parse().unwrap()) == Some(to)
        });
    }

    /// The shard channels subscribed on any live node (`PUBSUB SHARDCHANNELS`).
    pub fn shard_channels(&self) -> Vec<String> {
        self.on_every_node(&["PUBSUB", "SHARDCHANNELS"])
    }

    /// The classic Pub/Sub channels subscribed on any live node (`PUBSUB CHANNELS`).
    pub fn classic_channels(&self) -> Vec<String> {
        self.on_every_node(&["PUBSUB", "CHANNELS"])
    }

    fn on_every_node(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = self
            .live_ports()
            .iter()
            .flat_map(|port| {
                let text = self.cli(*port, args);
                text.lines().map(str::to_owned).collect::<Vec<_>>()
            })
            .filter(|line| !line.is_empty())
            .collect();
        all.sort();
        all
    }

    pub fn wait_until(&self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        super::poll_until(what, 2 * WAIT, || done(self));
    }
}
