//! Inputs: each source turns something outside (a clock, stdin lines) into `Event`s and
//! publishes them to a channel. Sources know nothing of HTTP; `app.rs` decides what their end means.

pub mod stdin;
pub mod ticker;
