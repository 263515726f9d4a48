//! The signals that stop the server: Ctrl-C (SIGINT), or SIGTERM on Unix. They are counted, not
//! only seen once: the first begins shutdown (a drain with `--drain`), a second one during the
//! drain ends the remaining streams at once.

use tokio::sync::watch;

/// Stop signals received so far, listened for from `listen` on.
#[derive(Debug)]
pub struct Stops(watch::Receiver<u32>);

impl Stops {
    /// Listens from the call, not from the first poll: `app::run` calls it before the
    /// `listening on` line, so a signal sent as soon as the port is known (by a supervisor, a
    /// script, a test) ends the process cleanly rather than by the default action.
    pub fn listen() -> Stops {
        let (count, counted) = watch::channel(0);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            // A signal that cannot be listened for is never counted.
            let interrupt = signal(SignalKind::interrupt()).ok();
            let terminate = signal(SignalKind::terminate()).ok();
            tokio::spawn(async move {
                let (mut interrupt, mut terminate) = (interrupt, terminate);
                loop {
                    tokio::select! {
                        Some(()) = recv(&mut interrupt) => {}
                        Some(()) = recv(&mut terminate) => {}
                        else => return,
                    }
                    count.send_modify(|count| *count += 1);
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                count.send_modify(|count| *count += 1);
            }
        });
        Stops(counted)
    }

    /// Resolves once `n` stop signals came in all.
    pub async fn counted(&mut self, n: u32) {
        if self.0.wait_for(|&count| count >= n).await.is_err() {
            // No signal can come any more: wait for ever, as a missing signal would.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(unix)]
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    signal.as_mut()?.recv().await
}
