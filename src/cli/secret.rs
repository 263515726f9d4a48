//! The one usage error clap words itself that can still quote a secret: "unexpected argument
//! 'X' found", where X is the rest of a secret typed with an unquoted space. (A refused value
//! is never shown: `values::secret`. A value that starts with `-` is taken as the value:
//! `allow_hyphen_values` on each secret flag, else clap's tip would quote it whole.) A flag is
//! secret here when its `#[arg]` says `hide_env_values`, as every secret flag's does.

use std::ffi::OsString;

use clap::Command;
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// clap's "unexpected argument 'X' found" quotes X. Right after a secret flag's value, X is
/// likely the rest of the secret (`--auth me my-password`, a token pasted with a space), so
/// there the error names the flag instead. Every other error passes unchanged.
pub fn unquoted_after_secret(
    err: clap::Error,
    cmd: &mut Command,
    argv: &[OsString],
) -> clap::Error {
    // The word clap quotes: an unknown argument, or a positional value it refused (`listen
    // --token abc def URL` takes `def` for the URL).
    let quoted = match err.kind() {
        ErrorKind::UnknownArgument => err.get(ContextKind::InvalidArg),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => err.get(ContextKind::InvalidValue),
        _ => None,
    };
    let Some(ContextValue::String(unexpected)) = quoted else {
        return err;
    };
    // The subcommands' flags too (`listen --token`).
    let secret_flags: Vec<String> = cmd
        .get_arguments()
        .chain(cmd.get_subcommands().flat_map(Command::get_arguments))
        .filter(|arg| arg.is_hide_env_values_set())
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    let words: Vec<&str> = argv
        .iter()
        .map(|word| word.to_str().unwrap_or(""))
        .collect();
    let after_secret = words.iter().enumerate().find_map(|(i, &word)| {
        if word != unexpected.as_str() || i == 0 {
            return None;
        }
        secret_flags.iter().find(|flag| {
            words[i - 1].starts_with(&format!("{flag}="))
                || (i >= 2 && words[i - 2] == flag.as_str())
        })
    });
    match after_secret {
        Some(flag) => clap::Error::raw(
            ErrorKind::UnknownArgument,
            format!(
                "unexpected argument after the value of '{flag}' (not shown: it may be part of \
                 the secret; quote a value that holds spaces)"
            ),
        )
        .format(cmd),
        None => err,
    }
}
