//! Publishing over HTTP on the real binary: `POST <events-path>[/<channel>]` with a bearer
//! token; text and JSON-lines bodies become events exactly as stdin lines do, all or nothing;
//! size and type limits; a POST waits for a stalled client like stdin does. Streams are read
//! with eventsource-stream.

use crate::common;

use std::time::Duration;

use common::{Server, TcpClient, data, ids};
use serde_json::json;

const AUTH: (&str, &str) = ("Authorization", "Bearer s3cret token");

fn publisher(extra: &[&str]) -> Server {
    let mut args = vec!["-i", "1h", "--publish-token", "s3cret token"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_needs_the_token() {
    let off = Server::start(&["-i", "1h"]);
    let answer = off.post("/events", &[AUTH], "x").await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.body.contains("--publish-token"), "{answer:?}");

    let server = publisher(&[]);
    let mut client = server.events("/events/build").await;
    for headers in [
        &[][..],
        // Shorter, longer, and the same length with the last byte wrong: compared as digests,
        // each is refused alike.
        &[("Authorization", "Bearer s3cret")][..],
        &[("Authorization", "Bearer s3cret token2")][..],
        &[("Authorization", "Bearer s3cret tokeN")][..],
        &[("Authorization", "Basic czNjcmV0IHRva2Vu")][..],
        &[("Authorization", "s3cret token")][..],
    ] {
        let answer = server
            .post("/events/build", headers, "must not go out")
            .await;
        assert_eq!(answer.status, 401, "{headers:?}: {answer:?}");
        assert!(
            answer.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    assert_eq!(server.stats().await["events_sent"], 0);

    // None of the refused ones went out: the first event the stream sees is this one, id 1.
    let answer = server.post("/events/build", &[AUTH], "now it goes").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"channel": "build", "events": 1, "first_id": "1", "last_id": "1", "consumers": 1})
    );
    assert_eq!(client.next_is("now it goes").await.id, "1");
    // The token is never logged.
    assert!(!server.stderr().contains("s3cret"), "{}", server.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn text_lines_become_events_as_stdin_lines_do() {
    let server = publisher(&[]);
    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    let body = "crlf\r\nlf\n\n  two spaces  \nlone\rcr\nunicode é 🚀 \u{2028}\nid: 7\ndata: x\nevent: y\n: not a comment\nretry: 5\nno line end";
    let answer = server
        .post(
            "/events?event=build",
            &[AUTH, ("Content-Type", "text/plain; charset=utf-8")],
            body,
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"channel": "default", "events": 11, "first_id": "1", "last_id": "11", "consumers": 1})
    );
    let got = client.take(11).await;
    assert_eq!(
        data(&got),
        [
            "crlf",
            "lf",
            "  two spaces  ",
            "lone\ncr",
            "unicode é 🚀 \u{2028}",
            "id: 7",
            "data: x",
            "event: y",
            ": not a comment",
            "retry: 5",
            "no line end"
        ]
    );
    assert!(got.iter().all(|event| event.event == "build"), "{got:?}");
    assert_eq!(
        ids(&got),
        (1..=11).map(|n| n.to_string()).collect::<Vec<_>>()
    );

    // What `curl -d` sends is taken as text, not decoded; no type at all is text too.
    let form = server
        .post(
            "/events",
            &[AUTH, ("Content-Type", "application/x-www-form-urlencoded")],
            "a+b%20c=d&e",
        )
        .await;
    assert_eq!(form.json()["first_id"], "12", "{form:?}");
    let untyped = server.post("/events", &[AUTH], "plain").await;
    assert_eq!(untyped.status, 200, "{untyped:?}");
    let got = client.take(2).await;
    assert_eq!(data(&got), ["a+b%20c=d&e", "plain"]);
    assert_eq!(got[0].event, "message");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_carry_their_fields_and_one_bad_line_publishes_nothing() {
    let server = publisher(&[]);
    let mut client = server.events("/events/orders").await;
    server.wait_for_consumers(1).await;
    let body = concat!(
        r#"{"data": "plain"}"#,
        "\r\n",
        r#"{"data": {"qty": 2, "sku": "A-17"}, "event": "order", "id": "o-1"}"#,
        "\n\n",
        r#"{"data": "two\nlines", "channel": "orders", "retry": 2500}"#,
        "\n",
    );
    let answer = server
        .post(
            "/events/orders",
            &[AUTH, ("Content-Type", "application/x-ndjson")],
            body,
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"channel": "orders", "events": 3, "first_id": "1", "last_id": "3", "consumers": 1})
    );
    let got = client.take(3).await;
    assert_eq!(
        data(&got),
        ["plain", r#"{"qty":2,"sku":"A-17"}"#, "two\nlines"]
    );
    assert_eq!(ids(&got), ["1", "o-1", "3"]);
    assert_eq!(got[1].event, "order");
    assert_eq!(got[2].retry, Some(Duration::from_millis(2500)));

    for (bad, line) in [
        (
            concat!(
                r#"{"data": "fine"}"#,
                "\n",
                r#"{"data": "fine"}"#,
                "\n",
                "{oops}\n"
            ),
            "line 3",
        ),
        (
            concat!(r#"{"data": "fine"}"#, "\n", r#"{"dta": "typo"}"#),
            "line 2",
        ),
        (r#"{"data": "x", "channel": "elsewhere"}"#, "line 1"),
        (r#"{"data": "x", "id": "a\nb"}"#, "line 1"),
        ("\n\n", "no event"),
    ] {
        let answer = server
            .post(
                "/events/orders",
                &[AUTH, ("Content-Type", "application/json")],
                bad,
            )
            .await;
        assert_eq!(answer.status, 400, "{bad:?}: {answer:?}");
        assert!(answer.body.contains(line), "{bad:?}: {answer:?}");
    }
    // No refused body published: the next event is the next accepted one, numbered on from 3.
    let answer = server
        .post(
            "/events/orders",
            &[AUTH, ("Content-Type", "application/json")],
            r#"{"data": "accepted"}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(client.next_is("accepted").await.id, "4");
    assert_eq!(server.stats().await["channels"]["orders"]["events_sent"], 4);

    let answer = server
        .post("/events", &[AUTH, ("Content-Type", "image/png")], "x")
        .await;
    assert_eq!(answer.status, 415, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_max_body_are_refused() {
    let server = publisher(&["--max-body", "1KiB"]);
    let line = "x".repeat(99) + "\n";
    let fits = line.repeat(10) + &"y".repeat(23) + "\n";
    assert_eq!(fits.len(), 1024);
    let answer = server.post("/events", &[AUTH], fits).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = server.post("/events", &[AUTH], line.repeat(11)).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.headers["connection"], "close", "{answer:?}");
    // Without a Content-Length (chunked), the body is cut off as soon as it is too large.
    let chunks: Vec<Result<String, std::io::Error>> = (0..20).map(|_| Ok(line.clone())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let answer = server.post("/events", &[AUTH], body).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(server.stats().await["events_sent"], 11);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_waits_for_a_stalled_client_then_completes_once_it_is_evicted() {
    let server = publisher(&[
        "--client-buffer",
        "4",
        "--stall-timeout",
        "1s",
        "--max-body",
        "16MiB",
        "-q",
    ]);
    // Sends its request, then never reads.
    let stalled = TcpClient::get(&server, "/events/jobs", Some(4096));
    server.wait_for_consumers(1).await;
    let mut reader = server.events("/events/jobs").await;
    server.wait_for_consumers(2).await;

    // Far more than the stalled client's buffers hold: the POST can only finish once it is gone.
    let line = "z".repeat(16 * 1024) + "\n";
    let post = tokio::spawn({
        let url = server.url("/events/jobs");
        let body = line.repeat(400);
        async move {
            reqwest::Client::new()
                .post(url)
                .header(AUTH.0, AUTH.1)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    });
    let got = reader.take(400).await;
    assert_eq!(got.last().unwrap().id, "400");
    let answer = post.await.unwrap();
    assert_eq!(answer.status(), 200);
    let stats = server.stats().await;
    assert_eq!(
        stats["clients_dropped_stalled"], 1,
        "the POST finished before the eviction: {stats}"
    );
    let answer: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(
        (answer["events"].clone(), answer["last_id"].clone()),
        (json!(400), json!("400"))
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_is_bounded_in_bytes_and_a_replay_past_it_is_told() {
    let server = publisher(&["--history-bytes", "1000"]);
    // Ids 10 to 30 with 85 bytes of data make frames of exactly 100 bytes ("id: NN\n", "data: "
    // and the data, "\n\n"): the newest ten fill the 1,000 bytes; the history would keep 1,000.
    let line = "x".repeat(85);
    let body = format!("{line}\n").repeat(30);
    let answer = server.post("/events", &[AUTH], body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let stats = server.stats().await;
    assert_eq!(
        (&stats["history_size"], &stats["oldest_id"]),
        (&serde_json::json!(10), &serde_json::json!("21")),
        "{stats}"
    );

    let mut earliest = server
        .events_with("/events", &[("Last-Event-ID", "earliest")])
        .await;
    let replayed = earliest.take(10).await;
    assert_eq!(
        ids(&replayed),
        (21..=30).map(|id| id.to_string()).collect::<Vec<_>>()
    );
    assert!(replayed.iter().all(|event| event.data == line));
    let mut raw = server
        .raw("/events", &[("Last-Event-ID", "earliest")])
        .await;
    let text = String::from_utf8_lossy(raw.read_until_contains("id: 30\n").await).into_owned();
    let notice =
        ": 20 older events are no longer kept (--history-bytes); replaying the 10 kept\n\n";
    assert!(text.starts_with(notice), "{text:?}");
    assert!(!text.contains("id: 20\n"), "{text:?}");

    let mut behind = server.raw("/events", &[("Last-Event-ID", "5")]).await;
    let text = String::from_utf8_lossy(behind.read_until_contains("id: 30\n").await).into_owned();
    assert!(
        text.starts_with(": 15 events after id 5 are no longer kept; replaying the 10 kept\n\n"),
        "{text:?}"
    );
    assert_eq!(text.matches("data: ").count(), 10, "{text:?}");
}
