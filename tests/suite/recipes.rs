//! The recipes a user copies from `docs/` that start this program behind another real program,
//! run as written (`common::recipe`: the block read out of its page, only ports and paths
//! changed): three instances on Debian's redis-server behind Debian's nginx
//! (`docs/scale-out.md`), two instances through a master, a replica and three Sentinels (the
//! same page), and a token minted with the shell command of `docs/private-channels.md`.

use crate::common;

use std::time::{Duration, Instant};

use common::recipe::{Recipe, Script};
use common::redis::free_port;
use common::{Client, WAIT, data, ids};

/// GET `url`'s `/stats` (a JSON object), or None while nothing answers there.
async fn stats(url: &str) -> Option<serde_json::Value> {
    let response = reqwest::get(format!("{url}/stats")).await.ok()?;
    serde_json::from_str(&response.text().await.ok()?).ok()
}

/// Waits until the instances at `urls` hold `count` streams between them.
async fn wait_for_streams(script: &Script, urls: &[String], count: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut total = 0;
        for url in urls {
            total += stats(url)
                .await
                .map_or(0, |s| s["consumers"].as_u64().unwrap_or(0));
        }
        if total == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{total} streams open, not {count}; the recipe's output:\n{}",
            script.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// POSTs `body` to `url` with the bearer `token`; the status.
async fn post(url: &str, token: &str, body: &str) -> reqwest::StatusCode {
    let request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .body(body.to_owned());
    let answer = tokio::time::timeout(WAIT, request.send()).await;
    answer.expect("an answer in time").expect("POST").status()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nginx_scale_out_recipe_delivers_every_post_to_every_reader() {
    let page = "docs/scale-out.md";
    let (redis, front) = (free_port(), free_port());
    let instances = [free_port(), free_port(), free_port()];
    let with_ports = |recipe: Recipe| {
        let recipe = recipe.port(8080, front);
        (8081..)
            .zip(instances)
            .fold(recipe, |r, (from, to)| r.port(from, to))
    };
    let shell = with_ports(Recipe::containing(page, "sh", "nginx -c")).port(6379, redis);
    let config = with_ports(Recipe::containing(page, "nginx", "upstream sse"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sse-nginx.conf"), config.text()).unwrap();
    let mut script = Script::start_in(&shell, &[], dir);
    for port in instances.into_iter().chain([front]) {
        script.wait_for_port(port);
    }
    let urls: Vec<String> = instances
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    let front = format!("http://127.0.0.1:{front}");

    // Three readers through nginx (its round robin spreads them over the instances).
    let mut readers = Vec::new();
    for _ in 0..3 {
        let reader = Client::connect(&format!("{front}/events"), &[]).await;
        assert_eq!(reader.status, 200, "{}", script.log());
        readers.push(reader);
    }
    wait_for_streams(&script, &urls, 3).await;
    // Six POSTs through nginx, which reach the three instances in turn.
    let sent: Vec<String> = (1..=6).map(|n| format!("event {n}")).collect();
    for body in &sent {
        assert_eq!(post(&format!("{front}/events"), "s3cret", body).await, 200);
    }
    let mut first_ids = None;
    for reader in &mut readers {
        let events = reader.take(6).await;
        assert_eq!(data(&events), sent);
        // The same ids on every instance: one broadcast.
        let ids = ids(&events);
        assert_eq!(first_ids.get_or_insert_with(|| ids.clone()), &ids);
    }
}

/// POSTs `body` to `url` until it is answered 200 (`503` while Redis's master is changing).
async fn post_until_stored(url: &str, token: &str, body: &str) {
    let deadline = Instant::now() + 2 * WAIT;
    while post(url, token, body).await != 200 {
        assert!(Instant::now() < deadline, "POST {url} never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sentinel_recipe_survives_a_kill_of_the_master() {
    let master = free_port();
    let [replica, s1, s2, s3, a, b] = [(); 6].map(|()| free_port());
    let shell = Recipe::containing("docs/scale-out.md", "sh", "--sentinel")
        .port(6379, master)
        .port(6380, replica)
        .port(26379, s1)
        .port(26380, s2)
        .port(26381, s3)
        .port(8081, a)
        .port(8082, b);
    let mut script = Script::start(&shell, &[]);
    script.wait_for_port(a);
    script.wait_for_port(b);
    let (a, b) = (
        format!("http://127.0.0.1:{a}"),
        format!("http://127.0.0.1:{b}"),
    );
    let mut on_a = Client::connect(&format!("{a}/events"), &[]).await;
    let mut on_b = Client::connect(&format!("{b}/events"), &[]).await;
    wait_for_streams(&script, &[a.clone(), b.clone()], 2).await;
    post_until_stored(&format!("{a}/events"), "s3cret", "before").await;
    assert_eq!(on_a.next().await.data, "before");
    assert_eq!(on_b.next().await.data, "before");

    // Sentinels learn of the replica from the master's INFO (every 10 s) and of each other
    // through it: until then a dead master has no successor. Wait for that, as an operator
    // would before trying a failover.
    let deadline = Instant::now() + 2 * WAIT;
    for sentinel in [s1, s2, s3] {
        loop {
            let replicas = redis_cli(sentinel, &["SENTINEL", "REPLICAS", "cache"]);
            let others = redis_cli(sentinel, &["SENTINEL", "SENTINELS", "cache"]);
            let known = [s1, s2, s3]
                .into_iter()
                .filter(|p| others.contains(&p.to_string()))
                .count();
            if replicas.contains(&replica.to_string()) && known == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Sentinels never met: {others}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // kill -9 of the master, as the page describes; the Sentinels promote the replica.
    let info = redis_cli(master, &["INFO", "server"]);
    let pid = info
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .unwrap_or_else(|| panic!("no process_id in {info}"))
        .trim()
        .to_owned();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    assert!(killed.unwrap().success());
    post_until_stored(&format!("{b}/events"), "s3cret", "after").await;
    assert_eq!(on_a.next().await.data, "after", "{}", script.log());
    assert_eq!(on_b.next().await.data, "after");
}

/// `redis-cli` with the recipe's password against 127.0.0.1:`port`.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--no-auth-warning", "-a", "s3cret"])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The environment variable `name` of the process `pid`, as /proc shows it.
fn environment_of(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|&b| b == 0).find_map(|entry| {
        let entry = std::str::from_utf8(entry).ok()?;
        entry
            .strip_prefix(name)?
            .strip_prefix('=')
            .map(str::to_owned)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_minted_with_the_shell_recipe_opens_its_channel() {
    let page = "docs/private-channels.md";
    // The server as the page starts it; its port comes from the environment (SSE_BROADCAST_PORT
    // is --port's variable), as the block names none.
    let start = Recipe::containing(page, "sh", "sse-broadcast --public");
    let server = Script::start(&start, &[("SSE_BROADCAST_PORT", "0")]);
    let listening = wait_for_line(&server, "listening on ");
    let base = listening.trim().to_owned();
    // The secret the block made: it is exported, so the server (bash's last command, exec'd
    // or its child) holds it in its environment.
    let secret = [server.pid()]
        .into_iter()
        .chain(children(server.pid()))
        .find_map(|pid| environment_of(pid, "SSE_BROADCAST_JWT_SECRET"))
        .expect("the server holds the secret the recipe made");
    assert_eq!(secret.len(), 64, "openssl rand -hex 32");

    let mint = Recipe::containing(page, "sh", "hmac.new");
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(mint.text())
        .env("SSE_BROADCAST_JWT_SECRET", &secret)
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let reader = Client::connect(&format!("{base}/events/user-42"), &auth).await;
    assert_eq!(reader.status, 200, "{}", server.log());
    let other = Client::connect(&format!("{base}/events/user-43"), &auth).await;
    assert_eq!(other.status, 403, "the token names user-42 only");
    let without = Client::connect(&format!("{base}/events/user-42"), &[]).await;
    assert_eq!(without.status, 401);
}

/// The first line of the script's output that starts with `prefix`, without it.
fn wait_for_line(script: &Script, prefix: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = script.log();
        if let Some(rest) = log.lines().find_map(|line| line.strip_prefix(prefix)) {
            return rest.to_owned();
        }
        assert!(Instant::now() < deadline, "no {prefix:?} line in\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The children of process `pid`.
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_self_signed_pair_recipe_serves_https_with_a_password() {
    // Its port comes from the environment (SSE_BROADCAST_PORT), as the block names none.
    let recipe = Recipe::containing("docs/security.md", "sh", "openssl req -x509");
    let server = Script::start(&recipe, &[("SSE_BROADCAST_PORT", "0")]);
    let base = wait_for_line(&server, "listening on ").trim().to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let cert = std::fs::read_to_string(server.file("cert.pem")).unwrap();
    let http = common::tls::client(Some(&cert), common::tls::Http::Alpn);
    let url = format!("{base}/events");
    let opened = http
        .get(&url)
        .basic_auth("me", Some("a long password"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200, "{}", server.log());
    assert_eq!(opened.version(), reqwest::Version::HTTP_2);
    assert_eq!(opened.headers()["content-type"], "text/event-stream");
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
}
