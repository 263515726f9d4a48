//! How long a connection may take to prove itself before it is closed: its first bytes (the
//! TLS ClientHello, or the first request's), its TLS handshake, its first request head (or the
//! HTTP/2 preface and SETTINGS), and, over HTTP/2, a time with no stream open. Each bounds what
//! a client that never starts can hold: a descriptor and a little memory, before any auth.

use std::time::Duration;

use anyhow::{Context as _, bail};

/// The environment variable that shortens these bounds, for tests only (a test cannot wait a
/// minute for an idle HTTP/2 connection to be closed). Its value reads
/// `first-bytes=1s,handshake=2s,head=2s,h2-idle=3s`; names left out keep their default.
pub const TEST_TIMEOUTS_ENV: &str = "SSE_BROADCAST_TEST_TIMEOUTS";

/// What a value may be, as the duration flags are bounded: the deadlines are `Instant + d`,
/// which a value such as 300000000000y would overflow (a panic, where the flags say no).
const RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(3600));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept to the first bytes: over TLS the whole ClientHello, on a plain port the
    /// first byte of a request. A socket that sends nothing holds no handshake slot and is
    /// closed after this (browsers drop an unused preconnected socket after 10 s too).
    pub first_bytes: Duration,
    /// From the moment a handshake is given its slot (its ClientHello is in) to its end; time
    /// spent waiting in line for the slot does not count.
    pub handshake: Duration,
    /// From the connection being ready for HTTP (accept, or the end of the TLS handshake) to a
    /// complete first request head, or the HTTP/2 preface and the client's SETTINGS; on
    /// HTTP/1.1 also from a response's end to the next request's head (hyper's
    /// `header_read_timeout`).
    pub head: Duration,
    /// An HTTP/2 connection with no stream open this long gets a GOAWAY and is closed.
    pub h2_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            first_bytes: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            head: Duration::from_secs(30),
            h2_idle: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// The defaults with the values `spec` names (the form of `TEST_TIMEOUTS_ENV`) replaced.
    pub fn overridden(spec: &str) -> anyhow::Result<Timeouts> {
        let mut timeouts = Timeouts::default();
        for item in spec
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (name, value) = item
                .split_once('=')
                .with_context(|| format!("{TEST_TIMEOUTS_ENV}: {item:?} is not NAME=DURATION"))?;
            let value = humantime::parse_duration(value.trim())
                .with_context(|| format!("{TEST_TIMEOUTS_ENV}: {item:?}"))?;
            if !(RANGE.0..=RANGE.1).contains(&value) {
                bail!("{TEST_TIMEOUTS_ENV}: {item:?} is out of range: 1ms to 1h");
            }
            let field = match name.trim() {
                "first-bytes" => &mut timeouts.first_bytes,
                "handshake" => &mut timeouts.handshake,
                "head" => &mut timeouts.head,
                "h2-idle" => &mut timeouts.h2_idle,
                other => bail!(
                    "{TEST_TIMEOUTS_ENV}: unknown {other:?} (first-bytes, handshake, head, h2-idle)"
                ),
            };
            *field = value;
        }
        Ok(timeouts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_override_their_default_only() {
        let timeouts = Timeouts::overridden("handshake=2s, h2-idle=500ms").unwrap();
        assert_eq!(timeouts.handshake, Duration::from_secs(2));
        assert_eq!(timeouts.h2_idle, Duration::from_millis(500));
        assert_eq!(timeouts.head, Timeouts::default().head);
        assert_eq!(Timeouts::overridden("").unwrap(), Timeouts::default());
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for spec in [
            "head",
            "head=soon",
            "idle=1s",
            "head=0s",
            "h2-idle=300000000000y",
        ] {
            assert!(Timeouts::overridden(spec).is_err(), "{spec}");
        }
    }
}
