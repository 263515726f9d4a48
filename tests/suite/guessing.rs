//! Password guessing is slowed: thousands of wrong `--auth` passwords (or `--publish-token`s)
//! from one peer are held, then refused with 429, while right ones, from that peer or another,
//! are answered at once.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use futures_util::StreamExt;
use tokio::sync::Notify;

const RIGHT: &str = "a long password";

/// A client whose connections come from `source` (any 127.0.0.0/8 address reaches the server).
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()
        .unwrap()
}

/// The status of `GET url` as `user:password`, and how long the answer took.
async fn stats_as(client: &reqwest::Client, url: &str, password: &str) -> (u16, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client.get(url).basic_auth("me", Some(password)).send(),
    )
    .await
    .expect("an answer")
    .unwrap();
    (response.status().as_u16(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn three_thousand_wrong_passwords_are_slowed_and_right_ones_are_not() {
    let auth = format!("me:{RIGHT}");
    let server = Server::start(&["-i", "1h", "--auth", &auth]);
    let server = server.asking_with(
        reqwest::Client::builder()
            .default_headers(
                [(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {}", base64_of(&auth)).parse().unwrap(),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .unwrap(),
    );
    let url = server.url("/stats");
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let started = Instant::now();
    let (guesser, guess_url) = (attacker.clone(), url.clone());
    let refused = Arc::new(Notify::new());
    let first_refusal = refused.clone();
    let guesses = futures_util::stream::iter(0..3000)
        .map(move |n| {
            let (attacker, url) = (guesser.clone(), guess_url.clone());
            let refused = first_refusal.clone();
            async move {
                let status = stats_as(&attacker, &url, &format!("guess {n}")).await.0;
                if status == 429 {
                    refused.notify_one();
                }
                status
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<u16>>();
    let guessing = tokio::spawn(guesses);

    // Meanwhile, once the slowing has begun (a guess was refused, so others are held): the right
    // password, from the guessing peer and from another, and a wrong one from the other peer,
    // all answered at once. Without pacing no guess is refused, and the wait fails.
    tokio::time::timeout(common::WAIT, refused.notified())
        .await
        .expect("a guess refused with 429 within WAIT");
    let neighbour = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for (client, password, expected) in [
        (&attacker, RIGHT, 200),
        (&neighbour, RIGHT, 200),
        (&neighbour, "a typo", 401),
    ] {
        let (status, took) = stats_as(client, &url, password).await;
        assert_eq!(status, expected, "{password:?}");
        assert!(took < Duration::from_secs(2), "{password:?} took {took:?}");
    }

    let statuses = guessing.await.unwrap();
    let elapsed = started.elapsed().as_secs();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    let answered = statuses.iter().filter(|&&s| s == 401).count();
    assert_eq!(refused + answered, 3000, "{statuses:?}");
    // 10 at once, 10 held, then about one a second: far from 3,000 answered.
    assert!(
        answered as u64 <= 25 + elapsed,
        "{answered} wrong passwords answered in {elapsed} s"
    );
    let (status, _) = stats_as(&attacker, &url, RIGHT).await;
    assert_eq!(status, 200);
}

/// The status of a POST with `Authorization: Bearer token`, and how long the answer took.
async fn post_as(client: &reqwest::Client, url: &str, token: &str) -> (u16, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client.post(url).bearer_auth(token).body("x").send(),
    )
    .await
    .expect("an answer")
    .unwrap();
    (response.status().as_u16(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_publish_tokens_are_slowed_as_passwords_are() {
    let server = Server::start(&["-i", "1h", "--publish-token", "tok"]);
    let url = server.url("/events");
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let started = Instant::now();
    let statuses = futures_util::stream::iter(0..500)
        .map(|n| {
            let (attacker, url) = (attacker.clone(), url.clone());
            async move { post_as(&attacker, &url, &format!("t{n}")).await.0 }
        })
        .buffer_unordered(32)
        .collect::<Vec<u16>>()
        .await;
    let elapsed = started.elapsed().as_secs();
    let answered = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(answered + refused, 500, "{statuses:?}");
    assert!(
        answered as u64 <= 25 + elapsed,
        "{answered} wrong tokens answered in {elapsed} s"
    );
    // The right token, from the guessing peer and from another, is not held.
    let neighbour = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for client in [&attacker, &neighbour] {
        let (status, took) = post_as(client, &url, "tok").await;
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }
    assert_eq!(server.stats().await["events_sent"], 2);
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::prelude::BASE64_STANDARD.encode(text)
}
