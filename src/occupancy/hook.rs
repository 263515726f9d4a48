//! One hook run: `sh -c CMD`, detached (its own process group, stdin from /dev/null, its output
//! on the server's stderr), with the server's environment minus every `SSE_BROADCAST_*`
//! variable (no secret reaches it) plus `SSE_CHANNEL`. Its exit is logged with its status as a
//! number (128 + the signal that killed it, as a shell says it).

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// The name of each hook in logs: its flag.
pub fn flag(occupied: bool) -> &'static str {
    if occupied {
        "--on-occupied"
    } else {
        "--on-vacated"
    }
}

/// Runs `command` for `channel` to its end; at `closing`, its process group gets SIGTERM and
/// is waited for.
pub async fn run(command: &str, channel: &str, occupied: bool, closing: &CancellationToken) {
    let hook = flag(occupied);
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .env("SSE_CHANNEL", channel)
        .process_group(0)
        .kill_on_drop(false);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SSE_BROADCAST_") {
            shell.env_remove(name);
        }
    }
    let mut child = match shell.spawn() {
        Ok(child) => child,
        Err(err) => {
            tracing::error!(channel, hook, "cannot start the hook: {err}");
            return;
        }
    };
    tracing::info!(channel, hook, pid = child.id(), "hook started");
    let status = tokio::select! {
        status = child.wait() => status,
        () = closing.cancelled() => {
            if let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32)) {
                // The group: a shell's children too, not only the shell.
                let _ = kill_process_group(pid, Signal::TERM);
            }
            child.wait().await
        }
    };
    match status {
        Ok(status) => {
            let status = number(status);
            if status == 0 {
                tracing::info!(channel, hook, status, "hook ended");
            } else {
                tracing::warn!(channel, hook, status, "hook failed");
            }
        }
        Err(err) => tracing::error!(channel, hook, "waiting for the hook failed: {err}"),
    }
}

/// A shell's number for an exit status.
fn number(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => -1,
    }
}
