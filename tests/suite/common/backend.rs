//! An authorization backend for `--authorize-url` on a free port: it keeps every request head
//! it got and answers each as the test says (a status, a JSON body, a delay, or held until the
//! test lets it go).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// What the backend answers to one request: status, extra header lines, body, after `delay`
/// and, if `held`, once the test has let it go.
pub struct Reply {
    pub status: &'static str,
    pub headers: String,
    pub body: String,
    pub delay: Duration,
    pub held: Option<Hold>,
}

/// Answers held back until `release`: a permit each (a semaphore, so that a release that comes
/// before the answer is waiting is not lost).
#[derive(Clone)]
pub struct Hold(Arc<Semaphore>);

impl Default for Hold {
    fn default() -> Self {
        Hold(Arc::new(Semaphore::new(0)))
    }
}

impl Hold {
    /// Lets every answer held, and every one to come, go.
    pub fn release(&self) {
        self.0.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    async fn wait(&self) {
        let _ = self.0.acquire().await;
    }
}

/// An answer of `status` with no body, at once.
pub fn reply(status: &'static str) -> Reply {
    Reply {
        status,
        headers: String::new(),
        body: String::new(),
        delay: Duration::ZERO,
        held: None,
    }
}

/// `200 OK` with a JSON `body`.
pub fn json(body: &str) -> Reply {
    Reply {
        headers: "Content-Type: application/json\r\n".into(),
        body: body.into(),
        ..reply("200 OK")
    }
}

/// The authorization backend: every request head it got, answered by `answer`.
pub struct Backend {
    pub url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Backend {
    pub fn start(answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Backend {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/auth", listener.local_addr().unwrap());
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = heads.clone();
        let answer = Arc::new(answer);
        // A runtime of its own: the tests block their own thread in the harness's waits.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (seen, answer) = (seen.clone(), answer.clone());
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut byte = [0; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            head.push(byte[0]);
                        }
                        let head = String::from_utf8_lossy(&head).into_owned();
                        seen.lock().unwrap().push(head.clone());
                        let reply = answer(&head);
                        tokio::time::sleep(reply.delay).await;
                        if let Some(held) = &reply.held {
                            held.wait().await;
                        }
                        let text = format!(
                            "HTTP/1.1 {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                            reply.status,
                            reply.headers,
                            reply.body.len(),
                            reply.body
                        );
                        let _ = stream.write_all(text.as_bytes()).await;
                    });
                }
            });
        });
        Backend { url, heads }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    pub fn asked(&self) -> usize {
        self.heads.lock().unwrap().len()
    }
}
