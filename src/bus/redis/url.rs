//! What `--redis` names: one server (`redis://`, `rediss://`, taken by the redis crate as it
//! is), a master found through Sentinel:
//! `redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/DB]#MASTER` (port 26379
//! by default; `rediss-sentinel://` speaks TLS to the Sentinels and the master), or a Redis
//! Cluster through seed nodes: `redis-cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]`
//! (port 6379 by default; `rediss-cluster://` for TLS). The password is the master's
//! (`requirepass`; Sentinels are asked without one), or every cluster node's. Written here, not
//! in `cli`, so that the check at parse time and the connection at start read it alike.

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsMode};

/// The port Sentinels listen on unless the URL says otherwise.
const SENTINEL_PORT: u16 = 26379;
/// The port cluster nodes listen on unless the URL says otherwise.
const NODE_PORT: u16 = 6379;

/// A parsed `--redis` value.
pub enum Target {
    /// One server: the URL as the redis crate takes it.
    Direct(redis::Client),
    /// A master named by Sentinels.
    Sentinel(Sentinels),
    /// A Redis Cluster, found through its seed nodes.
    Cluster(ClusterNodes),
}

/// The Sentinel form of the URL, parsed. No `Debug`: it holds the password.
pub struct Sentinels {
    pub addresses: Vec<(String, u16)>,
    pub master: String,
    username: Option<String>,
    password: Option<String>,
    db: i64,
    tls: bool,
}

impl Target {
    /// Parses `url`; the error says what is wrong without repeating the URL (it may hold a
    /// password).
    pub fn parse(url: &str) -> Result<Target, String> {
        if let Some((tls, rest)) = strip_sentinel_scheme(url) {
            return Sentinels::parse(rest, tls).map(Target::Sentinel);
        }
        if let Some((tls, rest)) = strip_cluster_scheme(url) {
            return ClusterNodes::parse(rest, tls).map(Target::Cluster);
        }
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err("expected redis://HOST[:PORT][/DB], rediss://..., \
                 redis-sentinel://HOST[:PORT][,HOST[:PORT]...]#MASTER \
                 or redis-cluster://HOST:PORT[,HOST:PORT...]"
                .into());
        }
        redis::Client::open(url)
            .map(Target::Direct)
            .map_err(|err| err.to_string())
    }
}

fn strip_sentinel_scheme(url: &str) -> Option<(bool, &str)> {
    if let Some(rest) = url.strip_prefix("redis-sentinel://") {
        return Some((false, rest));
    }
    url.strip_prefix("rediss-sentinel://")
        .map(|rest| (true, rest))
}

fn strip_cluster_scheme(url: &str) -> Option<(bool, &str)> {
    if let Some(rest) = url.strip_prefix("redis-cluster://") {
        return Some((false, rest));
    }
    url.strip_prefix("rediss-cluster://")
        .map(|rest| (true, rest))
}

/// The Cluster form of the URL, parsed. No `Debug`: it holds the password.
pub struct ClusterNodes {
    /// The seed nodes: any of them tells the client the rest of the cluster.
    pub addresses: Vec<(String, u16)>,
    username: Option<String>,
    password: Option<String>,
    tls: bool,
}

impl ClusterNodes {
    fn parse(rest: &str, tls: bool) -> Result<ClusterNodes, String> {
        let (username, password, hosts) = credentials(rest)?;
        if hosts.contains(['/', '?', '#']) {
            return Err("a Cluster URL names only nodes (a cluster has database 0 alone)".into());
        }
        let addresses = hosts
            .split(',')
            .map(|node| host_and_port(node, NODE_PORT, "cluster node"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClusterNodes {
            addresses,
            username,
            password,
            tls,
        })
    }

    /// The crate's cluster client builder for these nodes, with the password (every node's).
    pub fn builder(&self) -> ClusterClientBuilder {
        let nodes = self.addresses.iter().map(|(host, port)| match self.tls {
            false => ConnectionAddr::Tcp(host.clone(), *port),
            true => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            },
        });
        let mut builder = ClusterClientBuilder::new(nodes);
        if let Some(username) = &self.username {
            builder = builder.username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.password(password);
        }
        if self.tls {
            builder = builder.tls(TlsMode::Secure);
        }
        builder
    }
}

impl Sentinels {
    fn parse(rest: &str, tls: bool) -> Result<Sentinels, String> {
        let (username, password, rest) = credentials(rest)?;
        let (rest, master) = rest
            .split_once('#')
            .ok_or("a Sentinel URL ends with #MASTER, the name the Sentinels know the master by")?;
        let master = percent_decoded(master)?;
        if master.is_empty() {
            return Err("the master's name after # is empty".into());
        }
        let (rest, db) = match rest.split_once('/') {
            None => (rest, 0),
            Some((rest, "")) => (rest, 0),
            Some((rest, db)) => (
                rest,
                db.parse::<i64>()
                    .ok()
                    .filter(|db| *db >= 0)
                    .ok_or("the database after / is not a number")?,
            ),
        };
        let addresses = rest
            .split(',')
            .map(|sentinel| host_and_port(sentinel, SENTINEL_PORT, "Sentinel"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sentinels {
            addresses,
            master,
            username,
            password,
            db,
            tls,
        })
    }

    /// The crate's client that asks the Sentinels for the master, and connects to it.
    pub fn client(&self) -> redis::RedisResult<SentinelClient> {
        let addresses = self.addresses.iter().map(|(host, port)| match self.tls {
            false => ConnectionAddr::Tcp(host.clone(), *port),
            true => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            },
        });
        let mut builder =
            SentinelClientBuilder::new(addresses, &self.master, SentinelServerType::Master)?
                .set_client_to_redis_db(self.db);
        if let Some(username) = &self.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if self.tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        }
        builder.build()
    }
}

/// `HOST[:PORT]` (`[V6]:PORT` for an IPv6 address), `default` when it names no port; `what`
/// names the host in a refusal.
/// The `[USER]:PASSWORD@` before the hosts, decoded, and what follows it. Split first, at the
/// last `@`: whatever the password holds (`#`, `/`, `,`, `:`) is the password's, so nothing
/// after is read from where a password may stand, and no error quotes any of it.
fn credentials(rest: &str) -> Result<(Option<String>, Option<String>, &str), String> {
    let Some((credentials, after)) = rest.rsplit_once('@') else {
        return Ok((None, None, rest));
    };
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let given = |text: &str| -> Result<Option<String>, String> {
        let text =
            percent_decoded(text).map_err(|why| format!("in the user or password: {why}"))?;
        Ok((!text.is_empty()).then_some(text))
    };
    Ok((given(user)?, given(password)?, after))
}

fn host_and_port(text: &str, default: u16, what: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address lacks its ]")?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("a {what}'s host is empty"));
    }
    let port = match port {
        None => default,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            // The host is not quoted: a URL missing its `@` has its password there.
            .ok_or_else(|| format!("the port of a {what} is not a port number (1 to 65535)"))?,
    };
    Ok((host.to_owned(), port))
}

/// `%XX` escapes decoded (a password may hold `@`, `,`, `/` or `#` that way).
fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or("a % escape is not two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a % escape is not UTF-8 text".into())
}

/// The URL as logs and errors show it: a password in it is left out.
/// Also in a URL too broken to parse, whose refusal shows it (`pw@host`: no scheme).
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        (_, Some(at)) => format!("…{}", &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinels(url: &str) -> Sentinels {
        match Target::parse(url) {
            Ok(Target::Sentinel(sentinels)) => sentinels,
            Ok(_) => panic!("{url} is not a Sentinel URL"),
            Err(err) => panic!("{url}: {err}"),
        }
    }

    #[test]
    fn sentinel_urls_name_the_sentinels_the_master_and_the_password() {
        let parsed = sentinels("redis-sentinel://:p%40ss@a:26380,b,[::1]:7000/2#my%20master");
        assert_eq!(
            parsed.addresses,
            [
                ("a".to_owned(), 26380),
                ("b".to_owned(), 26379),
                ("::1".to_owned(), 7000)
            ]
        );
        assert_eq!(parsed.master, "my master");
        assert_eq!(parsed.password.as_deref(), Some("p@ss"));
        assert_eq!(parsed.username, None);
        assert_eq!(parsed.db, 2);
        assert!(!parsed.tls);
        // What a password holds unescaped is the password's: `#`, `/`, `:`, `,`, `@`.
        let parsed = sentinels("redis-sentinel://:hunter2:x#y/z,w@@s1#m");
        assert_eq!(parsed.password.as_deref(), Some("hunter2:x#y/z,w@"));
        assert_eq!(parsed.addresses, [("s1".to_owned(), 26379)]);
        assert_eq!(parsed.master, "m");
        let parsed = sentinels("rediss-sentinel://user:pw@h#m");
        assert!(parsed.tls);
        assert_eq!(parsed.username.as_deref(), Some("user"));
        if let Err(err) = parsed.client() {
            panic!("{err}");
        }
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_them() {
        for (url, why) in [
            ("redis-sentinel://h", "#MASTER"),
            ("redis-sentinel://h#", "empty"),
            ("redis-sentinel://h:x#m", "port"),
            ("redis-sentinel://h:0#m", "port"),
            ("redis-sentinel://:secret@,h#m", "host is empty"),
            ("redis-sentinel://h/x#m", "database"),
            ("redis-sentinel://:se%zzcret@h#m", "escape"),
            ("redis-sentinel://:secret:x#y@h:x#m", "port"),
            ("redis-sentinel://secret:x#m", "port"),
            ("redis-cluster://:se#cret@h:x", "port"),
            ("redis://:se#cret@h", ""),
            ("http://h", "expected redis://"),
        ] {
            let err = Target::parse(url)
                .err()
                .unwrap_or_else(|| panic!("{url} passed"));
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains("cret"), "{url}: {err}");
        }
        assert!(matches!(
            Target::parse("redis://h:1/0"),
            Ok(Target::Direct(_))
        ));
    }

    #[test]
    fn cluster_urls_name_the_seed_nodes_and_the_password() {
        let Ok(Target::Cluster(nodes)) =
            Target::parse("redis-cluster://:p%40ss@a:7000,b,[::1]:7001")
        else {
            panic!("not parsed as a Cluster URL");
        };
        assert_eq!(
            nodes.addresses,
            [
                ("a".to_owned(), 7000),
                ("b".to_owned(), 6379),
                ("::1".to_owned(), 7001)
            ]
        );
        assert_eq!(nodes.password.as_deref(), Some("p@ss"));
        assert!(!nodes.tls);
        let Ok(Target::Cluster(nodes)) = Target::parse("rediss-cluster://user:pw@h:7000") else {
            panic!("not parsed as a Cluster URL");
        };
        assert!(nodes.tls && nodes.username.as_deref() == Some("user"));
        if let Err(err) = nodes.builder().build() {
            panic!("{err}");
        }
        for (url, why) in [
            ("redis-cluster://:secret@h:x", "port"),
            ("redis-cluster://:secret@h:1,", "host is empty"),
            ("redis-cluster://:secret@h:1/0", "database 0"),
            ("redis-cluster://:se%zzcret@h:1", "escape"),
        ] {
            let err = Target::parse(url)
                .err()
                .unwrap_or_else(|| panic!("{url} passed"));
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn a_password_stays_out_of_messages() {
        assert_eq!(
            redacted("rediss://user:secret@cache.internal:6380/2"),
            "rediss://…@cache.internal:6380/2"
        );
        assert_eq!(
            redacted("redis-sentinel://:secret@a,b#m"),
            "redis-sentinel://…@a,b#m"
        );
        assert_eq!(
            redacted("redis-cluster://:secret@a:7000,b:7001"),
            "redis-cluster://…@a:7000,b:7001"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("secret@h:6379"), "…@h:6379");
    }
}
