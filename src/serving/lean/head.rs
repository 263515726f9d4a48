//! The lean path's HTTP/1.1 heads: which first requests it takes (httparse reads them, as
//! hyper does), and the head of the event-stream response, written byte for byte as hyper
//! writes it. Pure: no I/O.

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Empty;
use warp::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};

/// Headers a request may have, as hyper allows (its `DEFAULT_MAX_HEADERS`); more goes to hyper.
const MAX_HEADERS: usize = 100;

/// What the bytes read so far say about the first request.
// Returned once per connection and taken apart at once: boxing the request would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A head this path serves: a bodyless HTTP/1.1 GET.
    Lean(Asked),
    /// Anything else (another method or version, a body, an upgrade, the HTTP/2 preface, a
    /// malformed head): hyper answers it, from the first byte, as it answers it today.
    Hyper,
}

/// A request this path serves, ready for the routes.
#[derive(Debug)]
pub struct Asked {
    pub request: Request<Empty<Bytes>>,
    /// The client asked to close after this response (`Connection: close`).
    pub close: bool,
}

pub fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    match head.parse(bytes) {
        // Bytes after the head are a pipelined request: hyper answers them all, in order.
        Ok(httparse::Status::Complete(length)) if length == bytes.len() => {}
        Ok(httparse::Status::Complete(_)) => return Parsed::Hyper,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Hyper,
    }
    // HTTP/1.0 has no chunked framing: its streams stay with hyper, which sends them
    // close-delimited.
    if head.method != Some("GET") || head.version != Some(1) {
        return Parsed::Hyper;
    }
    let Some(path) = head.path else {
        return Parsed::Hyper;
    };
    let mut request = Request::new(Empty::new());
    *request.method_mut() = Method::GET;
    *request.version_mut() = Version::HTTP_11;
    match path.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return Parsed::Hyper,
    }
    let mut close = false;
    for field in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(field.name.as_bytes()),
            HeaderValue::from_bytes(field.value),
        ) else {
            return Parsed::Hyper;
        };
        // A body (either framing), an upgrade or an expectation: hyper's to handle, and the
        // only way a second request could hide in this one's bytes.
        if [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            header::EXPECT,
        ]
        .contains(&name)
        {
            return Parsed::Hyper;
        }
        if name == header::CONNECTION && has_token(&value, "close") {
            close = true;
        }
        request.headers_mut().append(name, value);
    }
    Parsed::Lean(Asked { request, close })
}

/// Whether the bytes read after the first `before` hold the blank line that ends a head
/// (`\r\n\r\n`, or bare `\n` line ends, which httparse takes too): only then can a head that
/// was partial be complete. The last three bytes read before are looked at again, since the
/// blank line may straddle two reads.
pub fn ends_head(bytes: &[u8], before: usize) -> bool {
    let new = &bytes[before.saturating_sub(3)..];
    new.windows(2)
        .enumerate()
        .any(|(at, pair)| pair == b"\n\n" || (pair == b"\n\r" && new.get(at + 2) == Some(&b'\n')))
}

/// A comma-separated header value holds `token` (case-insensitive), as in `Connection: close`.
fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .as_bytes()
        .split(|&byte| byte == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether this path can send a response: a 200 event stream whose framing is left to the
/// server (no length, no transfer coding, no connection or date header set by the routes).
pub fn is_lean_stream(status: StatusCode, headers: &warp::http::HeaderMap) -> bool {
    status == StatusCode::OK
        && headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
        && [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
            header::DATE,
            header::TRAILER,
        ]
        .iter()
        .all(|name| !headers.contains_key(name))
}

/// The response head, as hyper writes it for a 200 with a body of unknown length to an
/// HTTP/1.1 client: the routes' headers in order, `connection: close` when the client asked
/// for it, chunked framing, the date.
pub fn encode_stream_head(
    headers: &warp::http::HeaderMap,
    close: bool,
    now: SystemTime,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"transfer-encoding: chunked\r\ndate: ");
    head.extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_at_its_blank_line_even_across_reads() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for before in 1..head.len() {
            assert!(ends_head(head, before), "{before}");
        }
        assert!(!ends_head(&head[..head.len() - 1], 3));
        assert!(ends_head(b"GET / HTTP/1.1\nHost: a\n\n", 20));
        assert!(!ends_head(b"GET / HTTP/1.1\r\nHost: a\r\n", 1));
    }
    use std::time::{Duration, UNIX_EPOCH};

    fn lean(bytes: &str) -> Asked {
        match parse(bytes.as_bytes()) {
            Parsed::Lean(asked) => asked,
            other => panic!("{bytes:?}: {other:?}"),
        }
    }

    #[test]
    fn takes_a_bodyless_http11_get() {
        let asked =
            lean("GET /events?lastEventId=3 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 2\r\n\r\n");
        assert_eq!(asked.request.uri(), "/events?lastEventId=3");
        assert_eq!(asked.request.headers()["last-event-id"], "2");
        assert!(!asked.close);
        let asked = lean("GET /events HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(asked.close);
    }

    #[test]
    fn leaves_the_rest_to_hyper() {
        for head in [
            "HEAD /events HTTP/1.1\r\n\r\n",
            "POST /events HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET /events HTTP/1.0\r\n\r\n",
            "GET /events HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /events HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "GET /events HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /stats HTTP/1.1\r\n\r\nGET /events HTTP/1.1\r\n\r\n",
            "GET /events HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET /ev ents HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(parse(head.as_bytes()), Parsed::Hyper), "{head:?}");
        }
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(parse(many.as_bytes()), Parsed::Hyper));
    }

    #[test]
    fn waits_for_the_whole_head() {
        let head = b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
        for end in 0..head.len() {
            assert!(matches!(parse(&head[..end]), Parsed::Partial), "{end}");
        }
    }

    #[test]
    fn writes_the_head_as_hyper_does() {
        let mut headers = warp::http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        assert!(is_lean_stream(StatusCode::OK, &headers));
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            String::from_utf8(encode_stream_head(&headers, true, now)).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
             connection: close\r\ntransfer-encoding: chunked\r\n\
             date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
        );
        assert!(!is_lean_stream(StatusCode::SERVICE_UNAVAILABLE, &headers));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        assert!(!is_lean_stream(StatusCode::OK, &headers));
    }
}
