//! sse-broadcast: Server-Sent Events from a ticker or stdin lines to every connected client.
//! The binary (`main.rs`) parses, starts logging and runs `app::run`; the library is split out
//! so that benches can drive the hot paths (encoding, fan-out, line decoding) directly.
//!
//! One event's path: a source (`source::ticker` renders the template, `source::stdin` decodes a
//! line, `publish` takes a POST body's lines) builds an `event::Event` and hands it to the
//! `bus` (with `--redis`, `bus::RedisBus` stores it in Redis, which gives it its id, and every
//! instance takes it back); the channel it goes to (`channels::Channels` holds them by name;
//! `channel::Channel`) gives it its id, or takes Redis's, and encodes it once to `Bytes`, kept in the history and sent over a broadcast channel; each
//! client's `stream::client_stream` forwards those bytes as the body that `server::routes`
//! answers `<events-path>[/<channel>]` with (behind `auth` when asked), on a connection served
//! by `connection::accept_loop` (TLS from `tls`, then HTTP/1.1 or HTTP/2; a plain HTTP/1.1
//! stream is written by `lean`, without hyper's buffers), which takes its orders (evict a
//! stalled client, close) from the shared `hub::Hub`. `metrics` reads the channels for
//! `/metrics`. `app` wires it together.

pub mod app;
pub mod auth;
pub mod bus;
pub mod channel;
pub mod channels;
pub mod cli;
pub mod connection;
pub mod event;
pub mod hub;
pub mod lean;
pub mod logging;
pub mod metrics;
pub mod publish;
pub mod server;
pub mod source;
pub mod stream;
pub mod template;
pub mod throttle;
pub mod tls;
