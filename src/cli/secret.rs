//! The usage errors clap words itself that can still quote a secret: "unexpected argument 'X'
//! found", where X is the rest of a secret typed with an unquoted space, or X refused as a
//! positional value or taken for a subcommand. (A refused value is never shown:
//! `values::secret`. A value that starts with `-` is taken as the value: `allow_hyphen_values`
//! on each secret flag, else clap's tip would quote it whole.) A flag is secret here when its
//! `#[arg]` says `hide_env_values`, as every secret flag's does.

use std::ffi::OsString;

use clap::Command;
use clap::error::ErrorKind;

/// Right after a secret flag's value, a word is likely the rest of the secret (`--auth me
/// my-password`, a token pasted with a space): an error that quotes such a word names the flag
/// instead. Every other error passes unchanged.
pub fn unquoted_after_secret(
    err: clap::Error,
    cmd: &mut Command,
    argv: &[OsString],
) -> clap::Error {
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
    let text = err.to_string();
    let after_secret = words.iter().enumerate().find_map(|(i, &word)| {
        if i == 0 || word.is_empty() || !text.contains(&format!("'{word}'")) {
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
