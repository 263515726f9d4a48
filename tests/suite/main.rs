//! The integration tests, one module per behaviour, linked into one test binary: reqwest,
//! rustls, h2 and warp are linked once, not once per file (as rust-lang/cargo's
//! `tests/testsuite` and ripgrep's `tests/tests.rs` do). Each module drives the real binary
//! through the harness in `common`. One module runs as `cargo test --test suite MODULE::`
//! (`cargo test --test suite redis::`), one test as `cargo test --test suite MODULE::NAME`.
//!
//! All modules share one process: a test must not change the process's environment, working
//! directory or limits (those are set on the child's `Command`). Tests overlap only with tests
//! of their own module (`common/turn.rs`), as when each module was a binary of its own.

mod common;

mod applications_contract;
mod auth;
mod authorize;
mod authorize_merged;
mod background;
mod browser_https;
mod channel_slots;
mod channels;
mod cli;
mod connection_limits;
mod cors;
mod deploy;
mod doc_paths;
mod drain;
mod duration_ranges;
mod fd_limit;
mod guessing;
mod h2_streams;
mod hardening;
mod head_limit;
mod heartbeat;
mod https;
mod kubernetes;
mod lean_path;
mod lean_tls;
mod lifecycle;
mod listen;
mod listen_access;
mod listen_exec;
mod listen_nchan;
mod listen_recipes;
mod listen_reconnect;
mod logging;
mod man_page;
mod metrics;
mod multi_channel;
mod multi_channel_scale;
mod never_start;
mod occupancy;
mod page;
mod page_channels;
mod page_private;
mod panics;
mod presence;
mod presence_renewal;
mod probes;
mod publish;
mod publish_answers;
mod rebinding;
mod recipes;
mod redis;
mod redis_cluster;
mod redis_cluster_faults;
mod redis_cluster_ready;
mod redis_delivery;
mod redis_history_bytes;
mod redis_keys;
mod redis_refusals;
mod redis_sentinel;
mod refusal;
mod replay;
mod routes;
mod same_origin;
mod secrets;
mod shutdown;
mod slow_clients;
mod socket_activation;
mod static_dir;
mod stdin;
mod storm;
mod stream_age;
mod switches;
mod ticker;
mod tokens;
mod troubleshooting;
mod trusted_proxy;
