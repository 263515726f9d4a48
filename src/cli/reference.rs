//! The generated references, both from `Cli` so that they cannot drift from `--help`: the man
//! pages (`man/sse-broadcast.1`, and `man/sse-broadcast-listen.1` for the subcommand, as git and
//! cargo name theirs) and the flag tables of `docs/flags.md`, one per help heading in the order
//! `--help` shows them, the server's and then `listen`'s. Each test fails when its file is stale and rewrites it when
//! asked (`UPDATE_MAN=1 cargo test man_page`, `UPDATE_DOCS=1 cargo test flags_doc`).

use clap::{Arg, ArgAction, Command, CommandFactory};
use clap_mangen::roff::{Roff, roman};

use super::Cli;

const FLAGS_DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/flags.md");
const BEGIN: &str = "<!-- flags:begin (generated from the clap definitions: UPDATE_DOCS=1 cargo test flags_doc) -->\n";
const END: &str = "<!-- flags:end -->\n";
const LISTEN_BEGIN: &str = "<!-- listen-flags:begin (generated from the clap definitions: UPDATE_DOCS=1 cargo test flags_doc) -->\n";
const LISTEN_END: &str = "<!-- listen-flags:end -->\n";

/// The `listen` subcommand as a command of its own, for its page and its tables.
fn listen_command() -> Command {
    let mut command = Cli::command();
    command.build();
    let listen = command.find_subcommand("listen").expect("declared").clone();
    listen
        .name("sse-broadcast-listen")
        .bin_name("sse-broadcast listen")
}

#[test]
fn man_page_is_current() {
    check_man_page(Cli::command(), "sse-broadcast.1");
    check_man_page(listen_command(), "sse-broadcast-listen.1");
}

fn check_man_page(command: Command, file: &str) {
    let page = man_page(command);
    let path = format!("{}/man/{file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    assert!(
        std::fs::read(&path).unwrap_or_default() == page,
        "man/{file} is stale: run UPDATE_MAN=1 cargo test man_page"
    );
}

/// The page clap_mangen writes, but for what `--help` shows after the flags: that text is laid
/// out for a terminal, and a man page fills and justifies it, so a copied command broke
/// (`curl   -H   "Authorization: ...`, flags wrapped onto the next line, words hyphenated).
/// Prose stays prose; examples go in no-fill blocks (`.EX`/`.EE`). The server's page shows the
/// README's examples, so a command copied from either is the same (tests/suite/man_page.rs
/// compares them as `man` renders them).
fn man_page(command: Command) -> Vec<u8> {
    let after_help = command
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    let is_server = command.get_name() == "sse-broadcast";
    let mut page = Vec::new();
    clap_mangen::Man::new(command.after_help(None::<&str>))
        .render(&mut page)
        .unwrap();
    let page = String::from_utf8(page).unwrap();
    let (prose, examples) = after_help
        .split_once("Examples:\n")
        .unwrap_or((&after_help, ""));
    let mut tail = Roff::new();
    if let Some(status) = prose.trim().strip_prefix("Exit status: ") {
        let status = status.split_whitespace().collect::<Vec<_>>().join(" ");
        tail.control("SH", ["EXIT STATUS"]).text([roman(status)]);
    }
    tail.control("SH", ["EXAMPLES"]);
    if is_server {
        no_fill(&mut tail, &readme_block("## Examples"));
        tail.control("PP", []).text([roman(
            "Publishing with POST (the token from the environment: argv is visible in ps):",
        )]);
        no_fill(&mut tail, &readme_block("## Publish from anywhere"));
    } else {
        // `--help`'s columns, without their indent.
        let lines: Vec<String> = examples
            .lines()
            .map(|line| line.strip_prefix("  ").unwrap_or(line).to_owned())
            .collect();
        no_fill(&mut tail, &lines);
    }
    let tail = tail.render();
    let page = match page.find(".SH VERSION") {
        Some(at) => format!("{}{tail}{}", &page[..at], &page[at..]),
        None => page + &tail,
    };
    page.into_bytes()
}

/// `lines` as one no-fill example block: shown as written, never filled, wrapped or hyphenated.
fn no_fill(roff: &mut Roff, lines: &[String]) {
    roff.control("EX", []);
    for line in lines {
        roff.text([roman(line.as_str())]);
    }
    roff.control("EE", []);
}

/// The lines of the first `sh` block under `heading` in README.md.
pub(super) fn readme_block(heading: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find(heading).expect("the README's heading")..];
    let block = &section[section.find("```sh\n").expect("an sh block") + "```sh\n".len()..];
    let block = &block[..block.find("```").expect("the block's end")];
    block.lines().map(str::to_owned).collect()
}

#[test]
fn flags_doc_is_current() {
    let mut current = std::fs::read_to_string(FLAGS_DOC).unwrap();
    for (begin_marker, end_marker, command) in [
        (BEGIN, END, Cli::command()),
        (LISTEN_BEGIN, LISTEN_END, listen_command()),
    ] {
        let (Some(begin), Some(end)) = (current.find(begin_marker), current.find(end_marker))
        else {
            panic!("docs/flags.md lacks the markers {begin_marker:?} and {end_marker:?}");
        };
        current = format!(
            "{}{begin_marker}{}{}",
            &current[..begin],
            flag_tables(&command),
            &current[end..]
        );
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(FLAGS_DOC, &current).unwrap();
    }
    assert!(
        std::fs::read_to_string(FLAGS_DOC).unwrap() == current,
        "docs/flags.md is stale: run UPDATE_DOCS=1 cargo test flags_doc"
    );
}

/// One table per help heading, `--help`'s "Options" (flags without a heading) first.
fn flag_tables(command: &Command) -> String {
    let mut headings: Vec<Option<&str>> = vec![None];
    for arg in command.get_arguments() {
        if !headings.contains(&arg.get_help_heading()) {
            headings.push(arg.get_help_heading());
        }
    }
    let mut out = String::new();
    for heading in headings {
        out += &format!("\n### {}\n\n", heading.unwrap_or("Options"));
        out += "| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n";
        for arg in command.get_arguments() {
            if arg.get_help_heading() == heading && !arg.is_hide_set() && !arg.is_positional() {
                out += &row(arg);
            }
        }
    }
    out + "\n"
}

fn row(arg: &Arg) -> String {
    let mut flag = String::new();
    if let Some(short) = arg.get_short() {
        flag += &format!("-{short}, ");
    }
    flag += &format!("--{}", arg.get_long().unwrap_or_default());
    let takes_value = !matches!(
        arg.get_action(),
        ArgAction::SetTrue | ArgAction::Count | ArgAction::Help | ArgAction::Version
    );
    if takes_value {
        let values: Vec<_> = arg
            .get_possible_values()
            .iter()
            .map(|value| value.get_name().to_owned())
            .collect();
        match values.as_slice() {
            [] => flag += &format!(" {}", arg.get_value_names().unwrap_or_default()[0]),
            _ => flag += &format!(" {}", values.join("|")),
        }
    }
    let env = arg
        .get_env()
        .map(|name| format!("`{}`", name.to_string_lossy()))
        .unwrap_or_default();
    let default = arg
        .get_default_values()
        .iter()
        .map(|value| format!("`{}`", value.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(", ");
    let help = arg.get_long_help().or(arg.get_help()).unwrap_or_default();
    format!(
        "| `{}` | {env} | {} | {} |\n",
        cell(&flag),
        cell(&default),
        cell(&help.to_string())
    )
}

/// Markdown table cells: a `|` would end the cell, `<...>` would be read as HTML.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', " ")
}
