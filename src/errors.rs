//! Errors as a person reads them, for every layer that reports one: the start-up errors, the
//! TLS files' and Redis's. At the bottom of the layers, so any module may use it.

use std::fmt::Display;

/// An error's text without the errno that Rust's `io::Error` appends: "Address already in use",
/// not "Address already in use (os error 98)". Takes an `io::Error`, or an error that wraps one
/// (a `RedisError` says "Connection refused (os error 111)" too).
pub fn describe(err: &(impl Display + ?Sized)) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errno_is_left_out() {
        // errno 2 is ENOENT on every Unix (and ERROR_FILE_NOT_FOUND on Windows).
        let missing = std::io::Error::from_raw_os_error(2);
        assert!(missing.to_string().contains("(os error 2)"));
        let text = describe(&missing);
        assert!(!text.is_empty() && !text.contains("os error"), "{text}");
        assert_eq!(describe("plain text"), "plain text");
    }
}
