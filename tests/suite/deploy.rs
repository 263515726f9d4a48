//! `docs/deploy.md` run as written (`common::recipe`: each block read out of the page, only its
//! ports and paths changed): one instance behind Debian's nginx and behind Debian's Caddy, an
//! event through each and the `Host` guard satisfied for the public name (and still refusing
//! another), and the systemd units of `contrib/systemd/` checked by `systemd-analyze verify`,
//! with a stop timeout above the service's `--drain`.

use crate::common;

use std::process::Command;

use common::recipe::{Recipe, Script};
use common::redis::free_port;
use common::{BIN, Client, WAIT};

const PAGE: &str = "docs/deploy.md";
const HOST: &str = "events.example.com";

/// Runs the page's shell block that holds `marker`, with `config` (the page's block of `lang`)
/// saved as `file` beside it; returns it once the proxy answers, with the proxy's address and
/// the instance's.
fn start(marker: &str, lang: &str, file: &str) -> (Script, String, String) {
    let (front, instance) = (free_port(), free_port());
    // The proxy's port is in the shell block (nginx) or only in its config (Caddy).
    let ports = |recipe: Recipe| match recipe.text().contains("8080") {
        true => recipe.port(8080, front).port(8081, instance),
        false => recipe.port(8081, instance),
    };
    let shell = ports(Recipe::containing(PAGE, "sh", marker));
    let config = ports(Recipe::under(PAGE, section(lang), lang, 0));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), config.text()).unwrap();
    let mut script = Script::start_in(&shell, &[], dir);
    script.wait_for_port(instance);
    script.wait_for_port(front);
    let url = |port| format!("http://127.0.0.1:{port}");
    (script, url(front), url(instance))
}

fn section(lang: &str) -> &'static str {
    match lang {
        "nginx" => "Behind nginx",
        _ => "Behind Caddy",
    }
}

/// A reader through the proxy at `front` addressed to `host`.
async fn reader(front: &str, host: &str) -> Client {
    Client::connect(
        &format!("{front}/events/news"),
        &[("Host", host), ("Accept", "text/event-stream")],
    )
    .await
}

/// POSTs through the proxy (`--publish-token` is `s3cret` in the recipes): the status.
async fn publish(front: &str, body: &str) -> u16 {
    let answer = reqwest::Client::new()
        .post(format!("{front}/events/news"))
        .header("Host", HOST)
        .bearer_auth("s3cret")
        .body(body.to_owned())
        .send();
    let answer = tokio::time::timeout(WAIT, answer).await.expect("an answer");
    answer.expect("POST through the proxy").status().as_u16()
}

/// An event goes through the proxy at `front` to a reader within the wait, for the public
/// name; the instance's `Host` guard is still on for any other name.
async fn an_event_goes_through(script: &Script, front: &str, instance: &str) {
    let mut news = reader(front, HOST).await;
    assert_eq!(news.status, 200, "{}", script.log());
    // Its answer's head came: the stream is subscribed, and takes what is published now.
    assert_eq!(publish(front, "through the proxy").await, 200);
    let event = news.next().await;
    assert_eq!(event.data, "through the proxy");
    let foreign = reader(instance, "rebind.example").await;
    assert_eq!(foreign.status, 403, "{}", script.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nginx_recipe_delivers_an_event_under_the_public_name() {
    let (script, front, instance) = start("nginx -c", "nginx", "sse-nginx.conf");
    an_event_goes_through(&script, &front, &instance).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_caddy_recipe_delivers_an_event_under_the_public_name() {
    let (script, front, instance) = start("caddy run", "caddyfile", "Caddyfile");
    an_event_goes_through(&script, &front, &instance).await;
}

#[test]
fn the_systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let units = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd");
    for unit in ["sse-broadcast.socket", "sse-broadcast.service"] {
        let text = std::fs::read_to_string(format!("{units}/{unit}")).unwrap();
        // Only the path changes: the binary under test stands where the unit expects it.
        let text = text.replace("/usr/local/bin/sse-broadcast", BIN);
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("sse-broadcast.socket"))
        .arg(dir.path().join("sse-broadcast.service"))
        .output()
        .expect("systemd-analyze (the Debian package systemd) is installed");
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    // A unit systemd cannot load at all ends the check early; one it loads with unknown keys
    // or bad values passes with warnings: both fail here.
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}

/// The service gives its drain time to finish: systemd waits `TimeoutStopSec` after SIGTERM
/// before SIGKILL, so it must be above `--drain` (with room for the last streams to close).
#[test]
fn the_service_waits_longer_than_its_drain() {
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/systemd/sse-broadcast.service"
    );
    let text = std::fs::read_to_string(unit).unwrap();
    let setting = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key}= in {unit}"))
    };
    let exec: Vec<&str> = setting("ExecStart").split_whitespace().collect();
    let drain = exec
        .windows(2)
        .find_map(|pair| (pair[0] == "--drain").then_some(pair[1]))
        .expect("ExecStart gives --drain");
    let drain = humantime::parse_duration(drain).unwrap();
    let stop = humantime::parse_duration(setting("TimeoutStopSec")).unwrap();
    assert!(
        !drain.is_zero() && stop >= drain + std::time::Duration::from_secs(5),
        "{drain:?} {stop:?}"
    );
}
