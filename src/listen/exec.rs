//! `--exec`: one `sh -c CMD` per event, in order, the next event read only once it finished.
//! The data and one newline go to its stdin; the event's fields to its environment. Its stdout
//! and stderr are the listener's.

use std::io;
use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::parse::Event;

/// Runs `command` for `event` and waits for it. `channel` is the event's own channel on a
/// stream of several (else `SSE_CHANNEL` is empty); `url` is the stream's, without credentials.
pub async fn run(
    command: &str,
    event: &Event,
    channel: Option<&str>,
    url: &str,
) -> io::Result<ExitStatus> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("SSE_ID", &event.id)
        .env("SSE_EVENT", event.event.as_deref().unwrap_or("message"))
        .env("SSE_CHANNEL", channel.unwrap_or(""))
        .env("SSE_URL", url)
        .stdin(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A command that does not read its stdin closes it: that is not an error.
            let _ = stdin.write_all(event.data.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        } // dropped here: the command sees the end of its input
    };
    let ((), status) = tokio::join!(feed, child.wait());
    status
}

/// The exit status a listener passes on for a failed command: its code, or 128 + the signal
/// that killed it, as a shell reports it.
pub fn code_of(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}
