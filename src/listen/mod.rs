//! `sse-broadcast listen URL`: the subscriber side, for scripts (DESIGN §15). Reads any SSE
//! endpoint as a browser's EventSource would (`parse.rs`), writes each event to stdout
//! (`output.rs`) or hands it to a command (`exec.rs`), notes how far it got (`cursor_file.rs`)
//! and reconnects from the last id after the stream ends or fails (`connect.rs`,
//! `backoff.rs`). A room of its own: the server's modules never import it.

mod backoff;
mod config;
mod connect;
mod cursor_file;
mod exec;
mod output;
mod parse;

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

pub use config::{Auth, ExecFailure, Header, ListenConfig, OutputMode};
use connect::{EXIT_ERROR, Failure, Opened};
use cursor_file::CursorFile;
use output::Output;
use parse::{Event, Parser};

/// How a listener ends: its exit status, and the line that says why when it failed.
#[derive(Debug)]
struct End {
    code: u8,
    message: Option<String>,
}

impl End {
    fn clean() -> Self {
        End {
            code: 0,
            message: None,
        }
    }

    fn error(code: u8, message: String) -> Self {
        End {
            code,
            message: Some(message),
        }
    }
}

/// Runs the listener to its end; returns the exit status after printing why it failed.
pub async fn run(config: ListenConfig) -> u8 {
    let end = match Listener::new(config) {
        Ok(mut listener) => listener.run().await,
        Err(end) => end,
    };
    if let Some(message) = &end.message {
        eprintln!("sse-broadcast: {message}");
    }
    end.code
}

struct Listener {
    client: reqwest::Client,
    /// The stream's URL as it may be shown (no credentials), for logs and `SSE_URL`.
    url: String,
    output: Output,
    cursor: Option<CursorFile>,
    /// The id a reconnect resumes from.
    last_id: String,
    retry: Duration,
    handled: u64,
    /// Set by SIGINT or SIGTERM: finish the event in hand, then exit 0.
    stop: watch::Receiver<bool>,
    config: ListenConfig,
}

impl Listener {
    fn new(config: ListenConfig) -> Result<Self, End> {
        let client =
            connect::client(&config).map_err(|err| End::error(EXIT_ERROR, format!("{err:#}")))?;
        let cursor = match &config.cursor_file {
            Some(path) => Some(CursorFile::new(path).map_err(|err| {
                End::error(
                    EXIT_ERROR,
                    format!("--cursor-file {}: {}", path.display(), err),
                )
            })?),
            None => None,
        };
        let kept = match &cursor {
            Some(cursor) => cursor.read().map_err(|err| {
                End::error(
                    EXIT_ERROR,
                    format!(
                        "cannot read --cursor-file {}: {err}",
                        cursor.path().display()
                    ),
                )
            })?,
            None => None,
        };
        // A cursor file that exists wins over --since: it is where this listener got to.
        let last_id = kept.or_else(|| config.since.clone()).unwrap_or_default();
        let stop = stop_on_signals()
            .map_err(|err| End::error(EXIT_ERROR, format!("cannot catch signals: {err}")))?;
        Ok(Listener {
            client,
            url: connect::shown(&config.url),
            output: Output::new(config.output, config.null),
            cursor,
            last_id,
            retry: backoff::DEFAULT_RETRY,
            handled: 0,
            stop,
            config,
        })
    }

    async fn run(&mut self) -> End {
        let mut failures: u32 = 0;
        loop {
            let opened = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => return End::clean(),
                opened = connect::open(&self.client, &self.config, &self.last_id) => opened,
            };
            match opened {
                Ok(Opened::Stop) => {
                    tracing::info!(url = %self.url, "204 No Content: the server says stop");
                    return End::clean();
                }
                Ok(Opened::Stream(response)) => {
                    failures = 0;
                    tracing::info!(url = %self.url, last_event_id = %self.last_id, "connected");
                    if let Err(end) = self.read(response).await {
                        return end;
                    }
                    if !self.config.reconnect {
                        return End::clean();
                    }
                }
                Err(Failure::Fatal { code, message }) => return End::error(code, message),
                Err(Failure::Retry(reason)) => {
                    if !self.config.reconnect {
                        return End::error(EXIT_ERROR, reason);
                    }
                    failures += 1;
                    if self.config.max_retries.is_some_and(|max| failures > max) {
                        let retries = failures - 1;
                        return End::error(
                            EXIT_ERROR,
                            format!("{reason}; gave up after {retries} retries (--max-retries)"),
                        );
                    }
                    tracing::warn!("{reason}");
                }
            }
            let wait = backoff::delay(self.retry, failures);
            tracing::info!(wait = ?wait, "reconnecting");
            tokio::select! {
                biased;
                () = stopped(&mut self.stop) => return End::clean(),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reads one stream to its end (or cut), handling each event as it completes.
    async fn read(&mut self, mut response: reqwest::Response) -> Result<(), End> {
        let mut parser = Parser::new(self.last_id.clone());
        let mut events = Vec::new();
        loop {
            let chunk = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => return Err(End::clean()),
                chunk = response.chunk() => chunk,
            };
            match chunk {
                Ok(Some(bytes)) => parser.feed(&bytes, &mut events),
                Ok(None) => {
                    tracing::info!(url = %self.url, "the stream ended");
                    break;
                }
                Err(err) => {
                    tracing::warn!(url = %self.url, "the stream was cut: {}", describe_cut(&err));
                    break;
                }
            }
            let handled = self.handle_all(&mut events).await;
            // Every event this read completed is handled (the parser holds none back): out
            // they go in one write, before the next read waits for the socket.
            written(self.output.flush())?;
            handled?;
            self.last_id = parser.last_id().to_owned();
        }
        self.last_id = parser.last_id().to_owned();
        if let Some(ms) = parser.reconnection_time() {
            self.retry = Duration::from_millis(ms);
        }
        Ok(())
    }

    /// Handles the events one read completed, in order, until one ends the listener.
    async fn handle_all(&mut self, events: &mut Vec<Event>) -> Result<(), End> {
        for event in events.drain(..) {
            self.handle(&event).await?;
            if *self.stop.borrow() {
                return Err(End::clean());
            }
        }
        Ok(())
    }

    /// Prints one event or runs its command, then notes its id in the cursor file. A printed
    /// event waits in the output's buffer for the end of its read, unless a cursor file is
    /// kept: "written after each event is handled" means the event is out before its id is.
    async fn handle(&mut self, event: &Event) -> Result<(), End> {
        let name = event.event.as_deref().unwrap_or("message");
        if !self.config.events.is_empty() && !self.config.events.iter().any(|kept| kept == name) {
            return Ok(());
        }
        let channel = channel_of(&event.id);
        match &self.config.exec {
            Some(command) => {
                let status = exec::run(command, event, channel, &self.url)
                    .await
                    .map_err(|err| {
                        End::error(EXIT_ERROR, format!("--exec: cannot run sh: {err}"))
                    })?;
                if !status.success() {
                    match self.config.exec_failure {
                        ExecFailure::Continue => {
                            tracing::warn!(id = %event.id, "--exec command failed ({status})");
                        }
                        ExecFailure::Exit => {
                            return Err(End::error(
                                exec::code_of(status),
                                format!(
                                    "--exec command failed ({status}) for event id {:?}",
                                    event.id
                                ),
                            ));
                        }
                    }
                }
            }
            None => {
                written(self.output.write(event, channel))?;
                if self.cursor.is_some() {
                    written(self.output.flush())?;
                }
            }
        }
        if let Some(cursor) = &self.cursor
            && !event.id.is_empty()
        {
            cursor.write(&event.id).map_err(|err| {
                End::error(
                    EXIT_ERROR,
                    format!(
                        "cannot write --cursor-file {}: {err}",
                        cursor.path().display()
                    ),
                )
            })?;
        }
        self.handled += 1;
        if self.config.count == Some(self.handled) {
            return Err(End::clean());
        }
        Ok(())
    }
}

/// What a write to stdout came to: a reader that has had enough (`| head -3`) is a clean end,
/// said nowhere; any other failure ends the listener with its reason.
fn written(result: std::io::Result<()>) -> Result<(), End> {
    match result {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(End::clean()),
        Err(err) => Err(End::error(
            EXIT_ERROR,
            format!("cannot write to stdout: {err}"),
        )),
    }
}

/// An event's own channel when its id is the cursor of a stream of several channels (this
/// server's `deploy:5,build:17`: its own channel first).
fn channel_of(id: &str) -> Option<&str> {
    let positions = crate::cursor::parse(id)?;
    (positions.len() >= 2).then(|| id.split(':').next().unwrap_or_default())
}

fn describe_cut(err: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = err;
    while let Some(source) = std::error::Error::source(last) {
        last = source;
    }
    crate::errors::describe(last)
}

/// A flag raised by SIGINT or SIGTERM.
fn stop_on_signals() -> std::io::Result<watch::Receiver<bool>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("signal received: finishing the event in hand");
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Resolves once the stop flag is up (never, if its sender is gone without raising it).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|&up| up).await.is_err() {
        std::future::pending::<()>().await;
    }
}
