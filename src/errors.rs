//! Errors as a person reads them, for every layer that reports one: the start-up errors, the
//! TLS files' and Redis's.

use std::io;

/// An I/O error as a person reads it: "Address already in use", without "(os error 98)".
pub fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}
