//! What a publisher is told: a POST's answer gives ids as strings, as `/stats` and the streams
//! do, whether the server numbered the events or a JSON line gave its own; a POST that carried
//! its token in the cookie is told the header it needs, not offered the cookie again.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Server;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const AUTH: (&str, &str) = ("authorization", "Bearer s3cret token");
const SECRET: &str = "a test secret of 32 bytes or more";

#[tokio::test(flavor = "multi_thread")]
async fn a_post_answer_gives_ids_as_strings_as_stats_does() {
    let server = Server::start(&["-i", "1h", "--publish-token", "s3cret token"]);
    let numbered = server.post("/events/build", &[AUTH], "one\ntwo\n").await;
    assert_eq!(numbered.status, 200, "{numbered:?}");
    assert_eq!(
        (&numbered.json()["first_id"], &numbered.json()["last_id"]),
        (&json!("1"), &json!("2")),
        "{numbered:?}"
    );
    let stats = server.stats().await;
    assert_eq!(
        stats["channels"]["build"]["newest_id"],
        json!("2"),
        "{stats}"
    );

    let given = server
        .post(
            "/events/build",
            &[AUTH, ("content-type", "application/x-ndjson")],
            "{\"data\": \"three\", \"id\": \"build-7\"}\n",
        )
        .await;
    assert_eq!(given.status, 200, "{given:?}");
    assert_eq!(given.json()["last_id"], json!("build-7"), "{given:?}");
    let stats = server.stats().await;
    assert_eq!(
        stats["channels"]["build"]["newest_id"],
        json!("build-7"),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_with_the_token_cookie_is_told_to_use_the_header() {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60);
    let claims = json!({"exp": exp.as_secs(), "sse_broadcast": {"publish": ["build"]}});
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    let server = Server::start(&["-i", "1h", "--jwt-secret", SECRET]);

    let cookie = format!("sse_broadcast_token={token}");
    let refused = server
        .post("/events/build", &[("cookie", &cookie)], "line")
        .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        refused.body.contains("Authorization: Bearer")
            && !refused.body.contains("the cookie sse_broadcast_token or"),
        "{refused:?}"
    );
    assert!(!refused.body.contains(&token), "{refused:?}");

    let bearer = format!("Bearer {token}");
    let published = server
        .post("/events/build", &[("authorization", &bearer)], "line")
        .await;
    assert_eq!(published.status, 200, "{published:?}");
}
