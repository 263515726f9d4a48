//! The man pages as `man` shows them (man-db, `man -l`, in a UTF-8 locale), wide and narrow: the
//! server's examples read character for character as the README's, so a command copied from
//! either runs the same (no filled spaces, no flag wrapped onto the next line, no hyphen turned
//! into a typographic one), and `listen`'s as its `--help` shows them.

use crate::common;

use std::process::Command;

use common::cli::command as cmd;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The lines of the EXAMPLES section of `page` as `man` renders it at `width` columns, without
/// the section's indent; blank lines left out.
fn rendered_examples(page: &str, width: u16) -> Vec<String> {
    let output = Command::new("man")
        .arg("-l")
        .arg(format!("{ROOT}/man/{page}"))
        .env("MANWIDTH", width.to_string())
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("MAN_KEEP_FORMATTING", "")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .output()
        .unwrap_or_else(|err| {
            panic!("`man` cannot run ({err}): install man-db (apt-get install man-db, or `bash .ci/run`)")
        });
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    // The last line is the page's footer (its name, on the right), not the last section's.
    let body = text
        .trim_end()
        .rsplit_once('\n')
        .map_or("", |(body, _)| body);
    let section: Vec<&str> = body
        .lines()
        .skip_while(|line| *line != "EXAMPLES")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .collect();
    assert!(
        !section.is_empty(),
        "no EXAMPLES section in {page}:\n{text}"
    );
    let indent = "       ";
    section
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.strip_prefix(indent)
                .unwrap_or_else(|| panic!("{line:?} is not indented as the section"))
                .to_owned()
        })
        .collect()
}

/// The lines of the first `sh` block under `heading` in README.md.
fn readme_block(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let section = &readme[readme.find(heading).expect("the heading")..];
    let block = &section[section.find("```sh\n").expect("an sh block") + 6..];
    block[..block.find("```").unwrap()]
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `block` stands in `lines` as it is, its lines one after another.
fn holds(lines: &[String], block: &[String]) -> bool {
    lines.windows(block.len()).any(|window| window == block)
}

#[test]
fn the_server_page_shows_the_readme_examples_as_written() {
    for width in [200, 50] {
        let shown = rendered_examples("sse-broadcast.1", width);
        for heading in ["## Examples", "## Publish from anywhere"] {
            let block = readme_block(heading);
            assert!(
                holds(&shown, &block),
                "MANWIDTH={width}: the man page's examples differ from the README's {heading:?}.\n\
                 README:\n{}\nman:\n{}",
                block.join("\n"),
                shown.join("\n")
            );
        }
    }
}

#[test]
fn the_listen_page_shows_its_help_examples_as_written() {
    let help = cmd().args(["listen", "--help"]).assert().success();
    let help = String::from_utf8(help.get_output().stdout.clone()).unwrap();
    let examples: Vec<String> = help
        .split_once("Examples:\n")
        .expect("listen --help has examples")
        .1
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| line.strip_prefix("  ").unwrap_or(line).to_owned())
        .collect();
    for width in [200, 50] {
        let shown = rendered_examples("sse-broadcast-listen.1", width);
        assert_eq!(shown, examples, "MANWIDTH={width}");
    }
}
