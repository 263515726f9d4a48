//! Channel patterns, as tokens' claims and `--public` write them: a channel name (`default` is
//! the default channel) or a prefix ending in `*` (`user-42`, `team.*`, `*`).

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::channels::ChannelName;

/// A channel name, or a prefix ending in `*` (`user-42`, `team.*`, `*`). `default` is the
/// default channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Name(String),
    Prefix(String),
}

impl Pattern {
    pub fn matches(&self, channel: &ChannelName) -> bool {
        match self {
            Pattern::Name(name) => name == channel.as_str(),
            Pattern::Prefix(prefix) => channel.as_str().starts_with(prefix.as_str()),
        }
    }

    /// A claim's pattern as written: the `*` may end it; anything else is a name, compared as
    /// it is (one that is no valid channel name matches nothing).
    fn from_claim(text: String) -> Self {
        match text.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Name(text),
        }
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Pattern::from_claim)
    }
}

impl FromStr for Pattern {
    type Err = String;

    /// `--public`: checked strictly, since a typo would silently open nothing (or too much).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || {
            format!(
                "`{text}` is not a channel name or a prefix ending in * (team.*, *): names are 1-64 of A-Z a-z 0-9 . _ -"
            )
        };
        match text.strip_suffix('*') {
            Some("") => Ok(Pattern::Prefix(String::new())),
            Some(prefix) => {
                // A prefix is the start of a valid name.
                let probe = format!("{prefix}x");
                probe.parse::<ChannelName>().map_err(|_| refuse())?;
                Ok(Pattern::Prefix(prefix.to_owned()))
            }
            None => text
                .parse::<ChannelName>()
                .map(|name| Pattern::Name(name.to_string()))
                .map_err(|_| refuse()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(name: &str) -> ChannelName {
        name.parse().unwrap()
    }

    #[test]
    fn patterns_match_names_and_prefixes() {
        let team: Pattern = "team.*".parse().unwrap();
        assert!(team.matches(&name("team.a")));
        assert!(!team.matches(&name("teamx")));
        assert!(!team.matches(&name("team")));
        let exact: Pattern = "user-42".parse().unwrap();
        assert!(exact.matches(&name("user-42")) && !exact.matches(&name("user-421")));
        assert!("*".parse::<Pattern>().unwrap().matches(&name("x")));
        assert!(
            "default"
                .parse::<Pattern>()
                .unwrap()
                .matches(&ChannelName::default_name())
        );
        for bad in ["a*b", "**", ".x*", "a b", "", "x/y"] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad:?} accepted");
        }
        // From a claim, any string goes: one that is no name matches nothing.
        assert!(!Pattern::from_claim("a*b".into()).matches(&name("ab")));
    }
}
