//! What a listener is asked to do, settled from the command line (`cli/listen.rs`).

use std::fmt;
use std::path::PathBuf;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

use crate::logging::LogConfig;

/// How each event is written to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    /// The event's data, then the terminator.
    Data,
    /// One JSON object a line, the shape `sse-broadcast -f json` reads.
    Json,
    /// The event as SSE wire text.
    Raw,
}

/// What a `--exec` command that exits non-zero does to the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecFailure {
    /// Warn and go on with the next event.
    Continue,
    /// Exit with the command's status.
    Exit,
}

/// Credentials sent with every request. Never printed: `Debug` hides them.
#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic { user: String, password: String },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}:<hidden>)"),
        }
    }
}

/// An extra request header (`-H`); its value may be a credential, so `Debug` hides it.
#[derive(Clone)]
pub struct Header {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: <hidden>", self.name)
    }
}

#[derive(Debug)]
pub struct ListenConfig {
    pub url: Url,
    pub output: OutputMode,
    /// `-0`: NUL ends each record instead of a newline.
    pub null: bool,
    /// `--event`: the names kept (`message` for unnamed events); empty keeps all.
    pub events: Vec<String>,
    pub count: Option<u64>,
    pub exec: Option<String>,
    pub exec_failure: ExecFailure,
    pub since: Option<String>,
    pub cursor_file: Option<PathBuf>,
    pub reconnect: bool,
    pub max_retries: Option<u32>,
    pub headers: Vec<Header>,
    pub auth: Option<Auth>,
    pub cacert: Option<PathBuf>,
    pub log: LogConfig,
}
