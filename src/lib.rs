//! sse-broadcast: Server-Sent Events from a ticker or stdin lines to every connected client.
//! The binary (`main.rs`) parses, starts logging and runs `app::run`; the library is split out
//! so that benches can drive the hot paths (encoding, fan-out, line decoding) directly.
//!
//! One event's path: a source (`source::ticker` renders the template, `source::stdin` decodes a
//! line) builds an `event::Event`; `hub::Hub::publish` gives it its id and encodes it once to
//! `Bytes`, kept in the history and sent over a broadcast channel; each client's
//! `stream::client_stream` forwards those bytes as the body that `server::routes` answers
//! `/events` with, on a connection served by `connection::accept_loop` (a plain HTTP/1.1 stream
//! is written by `lean`, without hyper's buffers). `app` wires it together.

pub mod app;
pub mod cli;
pub mod connection;
pub mod event;
pub mod hub;
pub mod lean;
pub mod logging;
pub mod server;
pub mod source;
pub mod stream;
pub mod template;
