//! Private channels (DESIGN.md §10): tokens minted here with jsonwebtoken (HS256, and ES256,
//! RS256 and EdDSA keys made in the test), carried every way, refused every way the contract
//! refuses them; patterns, `--public`, publish rights, `/stats` and `/metrics`, a stream ending
//! at its token's expiry on each way of serving, logs that never hold a token, and the page in
//! Chromium reading a private channel with the cookie set.

use crate::common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::page::viewer;
use common::tls::{self, Http, TestCert};
use common::{Server, data};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a test secret of 32 bytes or more";
const INVALID: &str = r#"Bearer realm="sse-broadcast", error="invalid_token""#;
const SCOPE: &str = r#"Bearer realm="sse-broadcast", error="insufficient_scope""#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(claims: &Value, algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
}

/// An HS256 token with `SECRET` granting `rights` for a minute.
fn token(rights: Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    sign(
        &json!({"exp": now() + 60, "sse_broadcast": rights}),
        Algorithm::HS256,
        &key,
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A client whose every request carries `token` (for the harness's `/stats` helpers).
fn carrying(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", bearer(token).parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A server requiring HS256 tokens, stdin JSON lines as input, `extra` flags after.
fn private_server(extra: &[&str]) -> Server {
    let mut args = vec!["-f", "json", "--jwt-secret", SECRET];
    args.extend_from_slice(extra);
    Server::piped(&args).asking_with(carrying(&token(json!({"subscribe": ["*"]}))))
}

/// The status, the challenge and the body of a GET that is refused.
async fn refused(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut request = reqwest::Client::new().get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map_or_else(String::new, |v| v.to_str().unwrap().to_owned());
    (status, challenge, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_token_is_401_and_a_narrow_one_403_naming_the_channel() {
    let server = private_server(&[]);
    let other = EncodingKey::from_secret(b"another secret, just as long as ours").unwrap();
    let rights = json!({"subscribe": ["team.*"]});
    let forged = sign(
        &json!({"exp": now() + 60, "sse_broadcast": rights}),
        Algorithm::HS256,
        &other,
    );
    let ours = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let expired = sign(
        &json!({"exp": now() - 120, "sse_broadcast": rights}),
        Algorithm::HS256,
        &ours,
    );
    let early = json!({"exp": now() + 600, "nbf": now() + 300, "sse_broadcast": rights});
    let not_yet = sign(&early, Algorithm::HS256, &ours);
    let no_exp = sign(&json!({"sse_broadcast": rights}), Algorithm::HS256, &ours);
    let hs512 = sign(
        &json!({"exp": now() + 60, "sse_broadcast": rights}),
        Algorithm::HS512,
        &ours,
    );
    // `alg: none`: the good token's claims, no signature.
    let good = token(rights.clone());
    let claims = good.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no token", vec![]),
        ("malformed", vec![("authorization", bearer("not.a.jwt"))]),
        ("forged", vec![("authorization", bearer(&forged))]),
        ("expired", vec![("authorization", bearer(&expired))]),
        ("not yet valid", vec![("authorization", bearer(&not_yet))]),
        ("without exp", vec![("authorization", bearer(&no_exp))]),
        ("alg none", vec![("authorization", bearer(&none))]),
        ("another algorithm", vec![("authorization", bearer(&hs512))]),
        (
            "a forged cookie",
            vec![("cookie", format!("sse_broadcast_token={forged}"))],
        ),
    ];
    for (case, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, challenge, body) = refused(&server, "/events/team.a", &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(challenge, INVALID, "{case}");
    }
    let (status, _, _) =
        refused(&server, &format!("/events/team.a?access_token={none}"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "alg none in the query");

    // A good token for team.* does not open teamx, nor the default channel.
    for (path, channel) in [("/events/teamx", "teamx"), ("/events", "default")] {
        let (status, challenge, body) =
            refused(&server, path, &[("authorization", &bearer(&good))]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(challenge, SCOPE, "{path}");
        assert!(
            body.contains(&format!("channel {channel}")),
            "{path}: {body}"
        );
    }
    // Nothing refused created a channel.
    let stats = server.stats().await;
    assert_eq!(stats["channels"].as_object().unwrap().len(), 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_carrier_opens_the_stream_and_patterns_match_as_prefixes() {
    let mut server = private_server(&["--public", "news.*"]);
    let team = token(json!({"subscribe": ["team.*", "default"]}));
    let by_header = server
        .events_with("/events/team.a", &[("authorization", &bearer(&team))])
        .await;
    let cookie = format!("theme=dark; sse_broadcast_token={team}");
    let by_cookie = server
        .events_with("/events/team.b", &[("cookie", &cookie)])
        .await;
    let by_query = server
        .events(&format!("/events/team.c?access_token={team}"))
        .await;
    let default = server
        .events_with("/events", &[("authorization", &bearer(&team))])
        .await;
    // --public news.* needs no token (and takes none that is bad); `news` itself is not public.
    let news = server
        .events_with("/events/news.today", &[("authorization", "Bearer junk")])
        .await;
    let (status, _, _) = refused(&server, "/events/news", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut clients = [by_header, by_cookie, by_query, default, news];
    for client in &clients {
        assert_eq!(client.status, StatusCode::OK);
    }
    server.wait_for_consumers(5).await;
    for (channel, text) in [
        ("team.a", "a"),
        ("team.b", "b"),
        ("team.c", "c"),
        ("default", "d"),
        ("news.today", "n"),
    ] {
        server.write(format!("{{\"data\": \"{text}\", \"channel\": \"{channel}\"}}\n").as_bytes());
    }
    for (client, text) in clients.iter_mut().zip(["a", "b", "c", "d", "n"]) {
        client.next_is(text).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_needs_the_publish_claim_or_the_publish_token() {
    let server = private_server(&["--publish-token", "the-publish-token"]);
    let reader = token(json!({"subscribe": ["build"]}));
    let mut stream = server
        .events_with("/events/build", &[("authorization", &bearer(&reader))])
        .await;
    server.wait_for_consumers(1).await;
    let publisher = token(json!({"publish": ["build", "deploy.*"]}));
    let auth = bearer(&publisher);
    let answer = server
        .post("/events/build", &[("authorization", &auth)], "by claim")
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let answer = server
        .post(
            "/events/build",
            &[("authorization", "Bearer the-publish-token")],
            "by publish token",
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(
        data(&stream.take(2).await),
        ["by claim", "by publish token"]
    );

    let answer = server
        .post("/events/other", &[("authorization", &auth)], "x")
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    assert_eq!(answer.headers["www-authenticate"], SCOPE);
    assert!(answer.body.contains("channel other"), "{answer:?}");
    // A reader's token does not publish.
    let answer = server
        .post("/events/build", &[("authorization", &bearer(&reader))], "x")
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    // A cookie carries no publisher's token (the harness's own client sends a header: not here).
    let cookie = format!("sse_broadcast_token={publisher}");
    for with_cookie in [true, false] {
        let mut request = reqwest::Client::new()
            .post(server.url("/events/build"))
            .body("x");
        if with_cookie {
            request = request.header("cookie", &cookie);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::UNAUTHORIZED,
            "cookie: {with_cookie}"
        );
        assert_eq!(answer.headers()["www-authenticate"], INVALID);
    }
    // Publishing is on with a key alone.
    let keyed = private_server(&[]);
    let answer = keyed
        .post("/events/deploy.eu", &[("authorization", &auth)], "x")
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_and_metrics_need_a_token_for_every_channel() {
    let server = private_server(&[]);
    let narrow = token(json!({"subscribe": ["team.*"]}));
    let all = token(json!({"subscribe": ["*"]}));
    for path in ["/stats", "/metrics"] {
        let (status, challenge, _) = refused(&server, path, &[]).await;
        assert_eq!(
            (status, challenge.as_str()),
            (StatusCode::UNAUTHORIZED, INVALID)
        );
        let (status, challenge, _) =
            refused(&server, path, &[("authorization", &bearer(&narrow))]).await;
        assert_eq!((status, challenge.as_str()), (StatusCode::FORBIDDEN, SCOPE));
        let (status, _, body) = refused(&server, path, &[("authorization", &bearer(&all))]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // The page is open: it holds no events.
    let (status, _, body) = refused(&server, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("EventSource") || body.contains("<html"),
        "{body}"
    );
}

/// Reads a stream's raw body until its end; it must close with the expiry comment.
async fn ends_expired(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(15), response.bytes())
        .await
        .expect("the stream ended in time")
        .expect("the body");
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_when_its_token_expires_however_it_is_served() {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    // Taken for `seconds` more: `exp` plus the 30 s of leeway.
    let soon = |seconds: u64| {
        let exp = now() + seconds - 30;
        let claims = json!({"exp": exp, "sse_broadcast": {"subscribe": ["live"]}});
        bearer(&sign(&claims, Algorithm::HS256, &key))
    };
    let plain = private_server(&[]);
    let cert = TestCert::new();
    let tls_args = cert.args();
    let mut args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    args.extend(["--jwt-secret", SECRET]);
    let secure = Server::start(&args);
    let clients = [
        ("lean HTTP/1.1", &plain, reqwest::Client::new()),
        ("h2c", &plain, tls::client(None, Http::H2c)),
        (
            "HTTP/1.1 over TLS",
            &secure,
            tls::client(Some(&cert.cert_pem), Http::Http1),
        ),
        (
            "HTTP/2 over TLS",
            &secure,
            tls::client(Some(&cert.cert_pem), Http::Alpn),
        ),
    ];
    let mut waiting = Vec::new();
    for (how, server, client) in &clients {
        let response = tls::get(
            client,
            &server.url("/events/live"),
            &[("authorization", &soon(2))],
        )
        .await;
        waiting.push((how, tokio::spawn(ends_expired(response))));
    }
    // A stream whose token lasts longer stays open meanwhile.
    let mut lasting = plain
        .events_with("/events/live", &[("authorization", &soon(60))])
        .await;
    for (how, ended) in waiting {
        let body = ended.await.unwrap();
        assert!(body.ends_with(": token expired\n\n"), "{how}: {body:?}");
    }
    let mut plain = plain;
    plain.write(b"{\"data\": \"still here\", \"channel\": \"live\"}\n");
    lasting.next_is("still here").await;
}

/// One rule of time (RFC 7519 NumericDates, fractions allowed): a token is taken from `nbf`
/// − 30 s to `exp` + 30 s, and a stream it opened ends then; after that it is refused. Before,
/// a token 10 s past `exp` was taken and its stream ended at once, so an EventSource
/// reconnected in a loop; a fractional `exp` was refused as malformed.
#[tokio::test]
async fn a_token_is_taken_as_long_as_its_streams_last() {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    // `exp` and `nbf` in seconds from now, as the token is made.
    let with = |exp: f64, nbf: Option<f64>| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mut claims = json!({"exp": unix + exp, "sse_broadcast": {"subscribe": ["live"]}});
        if let Some(nbf) = nbf {
            claims["nbf"] = json!(unix + nbf);
        }
        bearer(&sign(&claims, Algorithm::HS256, &key))
    };
    let mut server = private_server(&[]);
    for (exp, nbf) in [(-31.0, None), (600.0, Some(40.5))] {
        let token = with(exp, nbf);
        let (status, challenge, _) =
            refused(&server, "/events/live", &[("authorization", &token)]).await;
        assert_eq!(
            (status, challenge.as_str()),
            (StatusCode::UNAUTHORIZED, INVALID)
        );
    }
    let late = with(-10.0, None);
    let mut late = server
        .events_with("/events/live", &[("authorization", &late)])
        .await;
    let fractions = with(60.5, Some(20.25));
    let mut fractions = server
        .events_with("/events/live", &[("authorization", &fractions)])
        .await;
    server.write(b"{\"data\": \"still taken\", \"channel\": \"live\"}\n");
    late.next_is("still taken").await;
    fractions.next_is("still taken").await;
    // Its stream ends when the leeway does, not at `exp`.
    let response = reqwest::Client::new()
        .get(server.url("/events/live"))
        .header("authorization", with(-27.5, None))
        .send()
        .await
        .unwrap();
    let body = ends_expired(response).await;
    assert!(body.ends_with(": token expired\n\n"), "{body:?}");
}

/// Writes `pem` to a file in `dir` and returns its path.
fn write_key(dir: &tempfile::TempDir, name: &str, pem: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

/// An RSA key pair from openssl (ring, behind rcgen, makes no RSA keys): (private, public) PEM.
fn rsa_pair(dir: &tempfile::TempDir) -> (String, String) {
    let private = dir.path().join("rsa.pem");
    let public = dir.path().join("rsa.pub.pem");
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(status.status.success(), "openssl {args:?}: {status:?}");
    };
    run(&[
        "genrsa",
        "-traditional",
        "-out",
        private.to_str().unwrap(),
        "2048",
    ]);
    run(&[
        "rsa",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (
        std::fs::read_to_string(private).unwrap(),
        std::fs::read_to_string(public).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn public_keys_verify_their_own_algorithm_only() {
    let dir = tempfile::tempdir().unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let (rsa_private, rsa_public) = rsa_pair(&dir);
    let kinds = [
        (
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
            ec.public_key_pem(),
        ),
        (
            "EdDSA",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
            ed.public_key_pem(),
        ),
        (
            "RS256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(rsa_private.as_bytes()).unwrap(),
            rsa_public,
        ),
    ];
    let claims = json!({"exp": now() + 60, "sse_broadcast": {"subscribe": ["a"]}});
    for (name, algorithm, signing, public_pem) in kinds {
        let path = write_key(&dir, &format!("{name}.pub.pem"), &public_pem);
        let server = Server::start(&["-i", "1h", "--jwt-key", &path]);
        let good = sign(&claims, algorithm, &signing);
        let stream = server
            .events_with("/events/a", &[("authorization", &bearer(&good))])
            .await;
        assert_eq!(stream.status, StatusCode::OK, "{name}");
        // HS256 signed with the public key's PEM as its secret: the classic confusion.
        let confused = sign(
            &claims,
            Algorithm::HS256,
            &EncodingKey::from_secret(public_pem.as_bytes()).unwrap(),
        );
        let (status, challenge, _) = refused(
            &server,
            "/events/a",
            &[("authorization", &bearer(&confused))],
        )
        .await;
        assert_eq!(
            (status, challenge.as_str()),
            (StatusCode::UNAUTHORIZED, INVALID),
            "{name}"
        );
        // A token of another key pair of the same kind is forged.
        let hs = token(json!({"subscribe": ["a"]}));
        let (status, _, _) =
            refused(&server, "/events/a", &[("authorization", &bearer(&hs))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        drop(stream);
    }
    // A private key, or a file that holds no key: exit 1, one line naming the file.
    let private = write_key(&dir, "private.pem", &ec.serialize_pem());
    let garbage = write_key(&dir, "garbage.pem", "hello\n");
    for (path, says) in [(&private, "private key"), (&garbage, "no PEM public key")] {
        let output = Command::new(common::BIN)
            .args(["--port", "0", "-i", "1h", "--jwt-key", path])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(path.as_str()) && stderr.contains(says),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_logged_with_the_peer_and_no_token_is_ever_logged() {
    let mut server = private_server(&["-vv", "--publish-token", "publish-token-in-the-clear"]);
    let good = token(json!({"subscribe": ["a"], "publish": ["a"]}));
    let forged = {
        let key = EncodingKey::from_secret(b"not the server's secret, but long enough").unwrap();
        let claims = json!({"exp": now() + 60, "sse_broadcast": {"subscribe": ["a"]}});
        sign(&claims, Algorithm::HS256, &key)
    };
    let mut stream = server
        .events(&format!(
            "/events/a?access_token={good}&lastEventId=earliest"
        ))
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    let cookie = format!("sse_broadcast_token={good}");
    let _by_cookie = server
        .events_with("/events/a", &[("cookie", &cookie)])
        .await;
    for token in [&forged, &good] {
        let _ = refused(&server, "/events/b", &[("authorization", &bearer(token))]).await;
        let _ = refused(&server, &format!("/events/b?access_token={token}"), &[]).await;
    }
    let answer = server
        .post(
            "/events/a",
            &[("authorization", &bearer(&good))],
            "published",
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = server
        .post(
            "/events/a",
            &[("authorization", "Bearer publish-token-in-the-clear")],
            "again",
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    server.write(b"{\"data\": \"last\", \"channel\": \"a\"}\n");
    assert_eq!(data(&stream.take(3).await), ["published", "again", "last"]);
    let log = server.wait_for_log("refused a token");
    assert!(
        log.contains("WARN") && log.contains("peer=127.0.0.1:"),
        "{log}"
    );
    server.terminate_cleanly();
    let log = server.stderr();
    for secret in [
        good.as_str(),
        forged.as_str(),
        SECRET,
        "publish-token-in-the-clear",
    ] {
        assert!(!log.contains(secret), "a log line holds {secret}:\n{log}");
        // Not even a token's signature or claims alone.
        for part in secret.split('.').filter(|part| part.len() > 8) {
            assert!(
                !log.contains(part),
                "a log line holds part of a token:\n{log}"
            );
        }
    }
}

#[test]
fn the_page_reads_a_private_channel_with_the_cookie_set() {
    let Some(mut browser) = viewer("the_page_reads_a_private_channel_with_the_cookie_set") else {
        return;
    };
    let mut server = private_server(&[]);
    server.write(b"{\"data\": \"kept for the page\", \"channel\": \"user-42\"}\n");
    server.wait_for_log("sent channel=user-42 id=1");
    // What an application does after its own login: it sets the cookie for the hub's origin.
    let reader = token(json!({"subscribe": ["user-42"]}));
    browser.call(
        "Storage.setCookies",
        json!({"cookies": [{"name": "sse_broadcast_token", "value": reader, "url": server.url("/")}]}),
    );
    browser.open(&server.url("/?channel=user-42"));
    browser.wait_for("the kept row", "rows().length === 1");
    server.write(b"{\"data\": \"live for user 42\", \"channel\": \"user-42\"}\n");
    browser.wait_for("the live row", "rows().length === 2");
    assert_eq!(browser.eval("rows()[0].data"), "live for user 42");
    browser.assert_no_script_errors();
}

#[test]
fn auth_and_a_token_key_together_are_a_usage_error() {
    let output = Command::new(common::BIN)
        .args([
            "--port",
            "0",
            "-i",
            "1s",
            "--auth",
            "me:hunter2",
            "--jwt-secret",
            SECRET,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--auth") && stderr.contains("--jwt-secret"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && !stderr.contains(SECRET),
        "{stderr}"
    );
}
