//! Value parsers shared by the flag groups: each returns a typed value or a message naming the
//! fix; clap adds the flag's name and exits 2. A secret's parser is wrapped in `secret`, whose
//! error names the flag but not the value.

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Arg, Command};
use ipnet::IpNet;

use crate::access::{Credentials, HostName, Pattern, Secret};

/// A secret's value parser: `parse`, with a usage error that never repeats the value. (clap's
/// own says `invalid value 'VALUE' for '--flag'`, which would put a password on stderr and so
/// in the journal.)
#[derive(Clone)]
pub struct SecretParser<T>(fn(&str) -> Result<T, String>);

pub fn secret<T>(parse: fn(&str) -> Result<T, String>) -> SecretParser<T> {
    SecretParser(parse)
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for SecretParser<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &Command, arg: Option<&Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let flag = arg.map_or_else(|| "a secret".to_owned(), |arg| format!("'{arg}'"));
        let refuse = |why: String| {
            let message = format!("invalid value for {flag} (not shown: it is secret): {why}");
            let mut cmd = cmd.clone();
            cmd.error(ErrorKind::ValueValidation, message)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("it is not UTF-8".into()))?;
        (self.0)(text).map_err(refuse)
    }
}

/// A switch (a flag without a value) from the environment: `1`/`0`, `true`/`false`, `yes`/`no`,
/// `on`/`off`, as people write them (clap's `BoolishValueParser` reads them). Anything else is a
/// usage error naming the variable and the words it takes.
#[derive(Debug, Clone, Copy)]
pub struct Switch;

impl TypedValueParser for Switch {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<bool, clap::Error> {
        BoolishValueParser::new()
            .parse_ref(cmd, arg, value)
            .map_err(|_| {
                let variable = arg.and_then(Arg::get_env).map_or_else(
                    || "a switch".to_owned(),
                    |name| name.to_string_lossy().into_owned(),
                );
                let flag = arg.map_or_else(String::new, |arg| format!(" ('{arg}')"));
                let message = format!(
                    "invalid value '{}' for {variable}{flag}: a switch is 1 or 0, true or false, \
                     yes or no, on or off",
                    value.to_string_lossy()
                );
                cmd.clone().error(ErrorKind::InvalidValue, message)
            })
    }
}

/// `--auth USER:PASSWORD`.
pub fn parse_credentials(text: &str) -> Result<Credentials, String> {
    text.parse()
}

/// `--jwt-secret`: the HS256 key, as its bytes.
pub fn parse_jwt_secret(text: &str) -> Result<Secret, String> {
    Secret::new(text.as_bytes().to_vec())
}

/// `--allowed-host`: a host name or IP address, without a port.
pub fn parse_host_name(text: &str) -> Result<HostName, String> {
    text.parse()
}

/// `--trusted-proxy`: a range (`10.0.0.0/8`, `fd00::/8`) or one address (its /32 or /128).
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|range| range.trunc())
        .map_err(|_| {
            format!("`{text}` is not an address range like 10.0.0.0/8, fd00::/8 or 127.0.0.1")
        })
}

/// `--public`: a channel name or a prefix ending in `*`.
pub fn parse_pattern(text: &str) -> Result<Pattern, String> {
    text.parse()
}

/// `--redis`: a `redis://`, `rediss://`, `redis-sentinel://` or `redis-cluster://` URL (checked here, reached at
/// start). Not a plain function: clap's own refusal repeats the value, and with it a password;
/// this one shows the URL with the password masked.
#[derive(Debug, Clone, Copy)]
pub struct RedisUrl;

impl clap::builder::TypedValueParser for RedisUrl {
    type Value = String;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let text = value.to_string_lossy();
        let checked = match value.to_str() {
            Some(text) => crate::bus::check_redis_url(text),
            None => Err("not UTF-8 text".into()),
        };
        checked.map(|()| text.clone().into_owned()).map_err(|why| {
            let arg = arg.map_or_else(|| "--redis <URL>".to_owned(), ToString::to_string);
            let shown = crate::bus::redacted_redis_url(&text);
            command.clone().error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value '{shown}' for '{arg}': {why}"),
            )
        })
    }
}

/// Braces would break the hash tag that keeps a channel's keys together; spaces read badly.
pub fn parse_redis_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['{', '}']) || text.contains(char::is_whitespace) {
        return Err("a prefix is non-empty, without braces or spaces".into());
    }
    Ok(text.to_owned())
}

/// The durations a flag accepts, checked at parse time so that exit 2 names the flag. Every
/// duration flag has one: beyond its maximum a value means nothing useful, and near
/// `Duration::MAX` the timers overflow (`Instant + d` and `mul_f64` panic in a task). Below a
/// millisecond is refused too: `retry:` is sent in milliseconds and a timer that fine would spin.
#[derive(Debug, Clone, Copy)]
pub struct DurationRange {
    min: Duration,
    max: Duration,
    /// "0" is accepted and means off.
    zero_is_off: bool,
}

pub const MILLISECOND: Duration = Duration::from_millis(1);
pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(24 * 3600);
pub const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

impl DurationRange {
    pub const fn new(min: Duration, max: Duration) -> Self {
        DurationRange {
            min,
            max,
            zero_is_off: false,
        }
    }

    /// Also accepts "0", which the flag documents as off.
    pub const fn or_off(self) -> Self {
        DurationRange {
            zero_is_off: true,
            ..self
        }
    }

    /// The clap value parser: `value_parser = RANGE.parser()`.
    pub fn parser(self) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync {
        move |text| self.parse(text)
    }

    /// "250ms", "2s", "1m30s"; a bare number is refused with the fix.
    fn parse(&self, text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text != "0" {
            return Err(format!(
                "`{text}` needs a unit: {text}ms, {text}s or {text}m"
            ));
        }
        let duration = match text {
            "0" => Duration::ZERO,
            _ => humantime::parse_duration(text)
                .map_err(|err| format!("`{text}`: {err} (try 500ms, 2s, 1m)"))?,
        };
        if duration.is_zero() {
            return match self.zero_is_off {
                true => Ok(Duration::ZERO),
                false => Err(format!("`{text}` must be longer than 0")),
            };
        }
        if duration < self.min || duration > self.max {
            let off = if self.zero_is_off {
                ", or 0 for off"
            } else {
                ""
            };
            return Err(format!(
                "`{text}` is out of range: {} to {}{off}",
                humantime::format_duration(self.min),
                humantime::format_duration(self.max)
            ));
        }
        Ok(duration)
    }
}

pub fn parse_size(text: &str) -> Result<usize, String> {
    let bytes =
        parse_size::parse_size(text).map_err(|err| format!("`{text}`: {err} (try 4MiB)"))?;
    match usize::try_from(bytes) {
        Ok(0) | Err(_) => Err(format!(
            "`{text}` must be between 1 byte and the address space"
        )),
        Ok(bytes) => Ok(bytes),
    }
}

pub fn parse_token(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the token must not be empty".into());
    }
    Ok(text.to_owned())
}

pub fn parse_events_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/')
        || text.contains(['?', '#'])
        || ["/", "/stats", "/metrics", "/healthz", "/readyz"].contains(&text)
    {
        return Err(format!(
            "`{text}` must start with / and not be /, /stats, /metrics, /healthz or /readyz, without ? or #"
        ));
    }
    Ok(text.to_owned())
}

/// An origin as a browser sends it: `scheme://host[:port]`, or `*`.
pub fn parse_origin(text: &str) -> Result<String, String> {
    if text == "*" {
        return Ok(text.to_owned());
    }
    let refuse =
        || format!("`{text}` is not an origin like https://example.com or http://localhost:3000");
    let uri: warp::http::Uri = text.parse().map_err(|_| refuse())?;
    let has_path = uri.path_and_query().is_some_and(|p| p.as_str() != "/") || text.ends_with('/');
    if uri.scheme().is_none() || uri.authority().is_none() || has_path {
        return Err(refuse());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_stay_in_their_range() {
        let range = DurationRange::new(MILLISECOND, HOUR);
        let parse = range.parser();
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1ms"), Ok(MILLISECOND));
        assert_eq!(parse("1h"), Ok(HOUR));
        for bad in [
            "2",
            "2x",
            "-1s",
            "",
            "s",
            "0",
            "999us",
            "1h 1ms",
            "300000000000y",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse("2").unwrap_err().contains("2s"));
        assert!(parse("2h").unwrap_err().contains("1ms to 1h"));
        let off = range.or_off().parser();
        assert_eq!(off("0"), Ok(Duration::ZERO));
        assert!(off("2h").unwrap_err().contains("1ms to 1h, or 0 for off"));
    }

    #[test]
    fn sizes_and_origins() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err() && parse_size("lots").is_err());
        assert!(parse_origin("https://a.example").is_ok());
        assert!(parse_origin("http://localhost:3000").is_ok());
        assert!(parse_origin("*").is_ok());
        for bad in ["a.example", "https://a.example/path", "https://a.example/"] {
            assert!(parse_origin(bad).is_err(), "{bad:?} accepted");
        }
    }
}
