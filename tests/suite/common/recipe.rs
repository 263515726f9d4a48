//! Recipes are tests: a fenced block read out of the Markdown page a user copies it from, with
//! only its ports and paths changed, run as written by the real programs it names.
//!
//! Finding a block (pages are named from the crate root, e.g. `docs/scale-out.md`):
//! - `Recipe::under(page, heading, lang, nth)`: the `nth` (from 0) block whose info string is
//!   `lang` (`sh`, `nginx`...) in the section that starts at the heading whose text is `heading`
//!   (without its `#`s) and runs to the next heading of the same or a higher level.
//! - `Recipe::containing(page, lang, marker)`: the one block of `lang` on the page whose text
//!   holds `marker`; none, or more than one, fails the test, so a marker must stay unique.
//!
//! Changing it: `port(from, to)` replaces a port number wherever it stands alone (no digit on
//! either side, so changing 6379 leaves 26379 alone); `path(from, to)` replaces a literal path.
//! Each fails the test when the block does not hold what it replaces, so a recipe edited under
//! its test is never run half-changed. Nothing else may be changed: `text()` is what runs.
//!
//! Running it: `Script::start` runs a shell block with `bash -c` (no options added, as a user
//! pastes it) in a fresh directory (`$PWD`), the binary under test first on `PATH`, stdout and
//! stderr to a file (`log()`, printed when the test fails). The shell and everything it starts,
//! in the background or not, share a process group of their own, killed when the `Script` drops.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BIN, WAIT};

#[derive(Debug, Clone)]
pub struct Recipe {
    page: String,
    text: String,
}

/// One fenced block: its info string (the language) and its text.
struct Block {
    lang: String,
    text: String,
    /// The headings above it, nearest last: (level, text).
    section: Vec<(usize, String)>,
}

fn read_page(page: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(page);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every fenced block of a page, with the headings it sits under.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut open: Option<(String, &str, String)> = None; // (lang, fence, text so far)
    for line in markdown.lines() {
        if let Some((lang, fence, text)) = &mut open {
            if line.trim_start().starts_with(*fence) && line.trim() == *fence {
                blocks.push(Block {
                    lang: std::mem::take(lang),
                    text: std::mem::take(text),
                    section: headings.clone(),
                });
                open = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(fence) = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f)) {
            let lang = trimmed.trim_start_matches(fence.chars().next().unwrap());
            open = Some((lang.trim().to_owned(), fence, String::new()));
        } else if line.starts_with('#') {
            let level = line.chars().take_while(|&c| c == '#').count();
            headings.retain(|(above, _)| *above < level);
            headings.push((level, line[level..].trim().to_owned()));
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    blocks
}

impl Recipe {
    /// The `nth` block of `lang` under the heading `heading` of `page` (see the module's doc).
    pub fn under(page: &str, heading: &str, lang: &str, nth: usize) -> Recipe {
        let found: Vec<Block> = blocks(&read_page(page))
            .into_iter()
            .filter(|b| b.lang == lang && b.section.iter().any(|(_, h)| h == heading))
            .collect();
        let block = found.into_iter().nth(nth).unwrap_or_else(|| {
            panic!("{page}: no {lang} block number {nth} under the heading {heading:?}")
        });
        Recipe {
            page: page.to_owned(),
            text: block.text,
        }
    }

    /// The one block of `lang` on `page` that holds `marker`.
    pub fn containing(page: &str, lang: &str, marker: &str) -> Recipe {
        let mut found: Vec<Block> = blocks(&read_page(page))
            .into_iter()
            .filter(|b| b.lang == lang && b.text.contains(marker))
            .collect();
        assert!(
            found.len() == 1,
            "{page}: {} {lang} blocks hold {marker:?}, not one",
            found.len()
        );
        Recipe {
            page: page.to_owned(),
            text: found.remove(0).text,
        }
    }

    /// Replaces the port `from` wherever it stands alone (no digit beside it) with `to`.
    pub fn port(mut self, from: u16, to: u16) -> Recipe {
        let (from, to) = (from.to_string(), to.to_string());
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        let mut replaced = 0;
        while let Some(at) = rest.find(&from) {
            // The character before: in what is left, or else the last one already written.
            let before = rest[..at].chars().last().or(out.chars().last());
            let after = rest[at + from.len()..].chars().next();
            out.push_str(&rest[..at]);
            if before.is_some_and(|c| c.is_ascii_digit())
                || after.is_some_and(|c| c.is_ascii_digit())
            {
                out.push_str(&from);
            } else {
                out.push_str(&to);
                replaced += 1;
            }
            rest = &rest[at + from.len()..];
        }
        out.push_str(rest);
        assert!(
            replaced > 0,
            "{}: the recipe has no port {from}:\n{}",
            self.page,
            self.text
        );
        self.text = out;
        self
    }

    /// Replaces every `from` (a path) with `to`.
    pub fn path(mut self, from: &str, to: &str) -> Recipe {
        assert!(
            self.text.contains(from),
            "{}: the recipe has no path {from:?}:\n{}",
            self.page,
            self.text
        );
        self.text = self.text.replace(from, to);
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A shell recipe running (see the module's doc).
pub struct Script {
    child: Child,
    dir: tempfile::TempDir,
    /// Held open (never written) while the script runs: a recipe reading stdin waits on it
    /// rather than seeing its end.
    _stdin: Option<ChildStdin>,
}

impl Script {
    /// Runs `recipe` with `bash -c` in a fresh directory, with `env` added to the environment.
    pub fn start(recipe: &Recipe, env: &[(&str, &str)]) -> Script {
        let dir = tempfile::tempdir().unwrap();
        Script::start_in(recipe, env, dir)
    }

    /// The same in `dir` (which may already hold files the recipe reads).
    pub fn start_in(recipe: &Recipe, env: &[(&str, &str)], dir: tempfile::TempDir) -> Script {
        let log = std::fs::File::create(dir.path().join("recipe.log")).unwrap();
        let bin_dir = Path::new(BIN).parent().unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin_dir.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(recipe.text())
            .current_dir(dir.path())
            .env("PATH", std::env::join_paths(paths).unwrap())
            .env("PWD", dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let stdin = child.stdin.take();
        Script {
            child,
            dir,
            _stdin: stdin,
        }
    }

    /// A file in that directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The shell's process id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it and everything it started wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.file("recipe.log")).unwrap_or_default()
    }

    /// Waits until something takes TCP connections on 127.0.0.1:`port`, or fails the test.
    pub fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nothing listens on {port}; the recipe's output:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        // The whole group: background jobs, nginx's workers, whatever the recipe started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- the recipe's output:\n{}", self.log());
        }
    }
}
