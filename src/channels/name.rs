//! A channel's name as clients and publishers give it, checked once where it enters (a path,
//! a JSON line, `--channel`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::channel::DEFAULT_NAME;

/// A channel name as it appears in the path: 1–64 of `A-Z a-z 0-9 . _ -`, starting with a letter
/// or digit. "default" names the default channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName(Arc<str>);

impl FromStr for ChannelName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let starts_well = name.starts_with(|c: char| c.is_ascii_alphanumeric());
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if (1..=64).contains(&name.len()) && starts_well && name.chars().all(allowed) {
            Ok(ChannelName(name.into()))
        } else {
            Err(format!(
                "`{name}` is not a channel name: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
            ))
        }
    }
}

impl ChannelName {
    /// The channel at `<events-path>` itself.
    pub fn default_name() -> Self {
        ChannelName(DEFAULT_NAME.into())
    }

    /// The name as channels hold it.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        &*self.0 == DEFAULT_NAME
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        for good in ["a", "build", "Job-7.log_2", "0", &"x".repeat(64)] {
            assert!(good.parse::<ChannelName>().is_ok(), "{good:?} refused");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "_x",
            "a b",
            "a/b",
            "é",
            "a%20",
            &"x".repeat(65),
        ] {
            assert!(bad.parse::<ChannelName>().is_err(), "{bad:?} accepted");
        }
    }
}
