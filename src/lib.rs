//! sse-broadcast: Server-Sent Events from a ticker, stdin lines or HTTP POSTs to every client.
//! The binary (`main.rs`) parses, starts logging and runs `app::run`; the library is split out
//! so that the benches can drive the hot paths (encoding, fan-out, line decoding) directly.
//!
//! Imports run one way, from the binary down (`python3 .ci/layers.py src` draws it):
//!
//! ```text
//! app.rs                 wiring and shutdown order
//! listen/                `sse-broadcast listen`: a client of any SSE stream; nothing below imports it
//! cli/                   flags only, one file per help heading; builds each module's config
//! serving/               accept, TLS, the lean HTTP/1.1 path, hyper for the rest
//! routes/                the warp filter chain: opening streams, publish, stats, metrics, page
//! stream/                each client's response body: prelude, one channel's or several's frames, deadline
//! access/                who may read and publish what: --auth, tokens, --authorize-url, the Host guard, 401/403
//! occupancy/             --on-occupied, --on-vacated: what runs when a channel gets or loses its readers
//! presence/              --presence: who reads each channel, its joins and leaves, over every instance
//! bus/ source/           where events come from and how instances share them
//! channels/ channel/     the registry (--max-channels slots); per channel: numbering, history, fan-out, backpressure
//! control/               shutdown, evictions, --max-clients; each client's progress record
//! serve_config.rs        what the routes serve, as cli builds it from the flags
//! cursor.rs              the id of a stream of several channels: written by stream/, read by listen/
//! event.rs template.rs lines.rs   the wire format, the ticker's message, input lines; pure
//! errors.rs throttle.rs logging.rs raw_header.rs refused.rs panics.rs signals.rs   helpers every layer may use
//! ```
//!
//! One event's path, by file:
//! 1. It enters as a stdin line (`source/stdin/` reads it, `lines.rs` decodes it into an
//!    `event::Event`), a tick (`source/ticker.rs` renders the template), or a POST body's line
//!    (`routes/publish.rs` reads it, `lines.rs` decodes it as it does stdin's).
//! 2. The input hands it to the bus (`bus/mod.rs`). Alone, the bus passes it to its channel;
//!    with `--redis` (`bus/redis/`) it is stored in Redis by a script that gives it its id,
//!    and every instance takes it back from Pub/Sub and passes it to its own channel.
//! 3. The channel (`channels/` finds it by name) gives it its id or takes Redis's
//!    (`channel/history.rs`), encodes it once to `Bytes` (`event.rs`) and puts it in the
//!    channel's ring (`channel/ring.rs`), which holds the history and what streams have still to
//!    read; each stream's receiver reads it by position (`channel/fanout.rs`). Input waits while
//!    the slowest stream is `--client-buffer` events behind, and `control/` orders a stalled
//!    stream's eviction (`channel/backpressure.rs`).
//! 4. Each stream's body (`stream/body.rs`: prelude, deadline, batching, progress; one
//!    channel's feed in `stream/one.rs`, opened by `routes/events.rs`) forwards those bytes;
//!    a stream of several channels (`stream/several.rs`, opened by `routes/multi_stream.rs`)
//!    merges theirs in arrival order and gives each event the stream's cursor as its id
//!    (`cursor.rs`, `event::put_with_id`). A new stream's replay is the channel's
//!    (`channel/history.rs`), the same for one channel and several.
//! 5. To the socket: on an HTTP/1.1 connection, plain or over TLS (rustls's unbuffered API,
//!    `serving/tls/unbuffered.rs`), the lean path (`serving/lean/`) writes the chunks itself from
//!    the connection's task; over HTTP/2 (and for every other request) hyper does
//!    (`serving/http.rs`), each HTTP/2 stream on a task of its own. The socket marks
//!    its client's progress (`serving/progress.rs`, `control/client.rs`) for the stall check.

mod access;
pub mod app;
mod bus;
pub mod channel;
mod channels;
pub mod cli;
pub mod control;
mod cursor;
mod errors;
pub mod event;
pub mod lines;
pub mod listen;
pub mod logging;
mod occupancy;
mod panics;
mod presence;
mod raw_header;
mod refused;
mod routes;
mod serve_config;
mod serving;
mod signals;
pub mod source;
mod stream;
mod template;
mod throttle;
