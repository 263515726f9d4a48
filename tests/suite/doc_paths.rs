//! Every source path the documentation names exists: in `README.md`, the pages of `docs/` and
//! the layout in `src/lib.rs`, a word that starts with `src/` (`src/cli/`, `src/app.rs`), and
//! one whose first part is a top-level entry of `src/` (`bus/redis/`, `source/ticker.rs`), must
//! name a file or folder there. Files are moved and split; the pages that point at them must
//! follow. (Other crates' files are written with their crate and version in front:
//! `h2-0.4.20/src/codec/framed_write.rs`, which is not ours to check.)

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The pages to read, relative to the crate's root.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md"), PathBuf::from("src/lib.rs")];
    let docs = std::fs::read_dir(Path::new(ROOT).join("docs")).expect("docs/ is there");
    for entry in docs {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "md") {
            pages.push(path.strip_prefix(ROOT).unwrap().to_path_buf());
        }
    }
    pages.sort();
    pages
}

/// The words of `text` that look like paths: runs of `A-Z a-z 0-9 _ . / -` holding a `/` or
/// ending in `.rs`, without the punctuation a sentence puts after them.
fn path_like(text: &str) -> Vec<&str> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    text.split(|c: char| !is_path_char(c))
        .map(|word| word.trim_end_matches('.'))
        .filter(|word| word.contains('/') || word.ends_with(".rs"))
        .collect()
}

/// The path under the crate's root that `word` names, if it names one of ours.
fn ours(word: &str, top_level: &[String]) -> Option<PathBuf> {
    if word.starts_with("src/") {
        return Some(PathBuf::from(word));
    }
    let first = word.split('/').next()?;
    top_level
        .iter()
        .any(|entry| entry == first)
        .then(|| Path::new("src").join(word))
}

#[test]
fn every_source_path_named_in_the_docs_exists() {
    let top_level: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("src"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut checked = 0;
    let mut missing = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(Path::new(ROOT).join(&page)).unwrap();
        for (number, line) in text.lines().enumerate() {
            for word in path_like(line) {
                let Some(path) = ours(word, &top_level) else {
                    continue;
                };
                checked += 1;
                if !Path::new(ROOT).join(&path).exists() {
                    missing.push(format!("{}:{}: {word}", page.display(), number + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
    // The layout of src/lib.rs and docs/how-it-works.md alone name dozens.
    assert!(
        checked > 50,
        "only {checked} paths found: is the scan still reading the pages?"
    );
}

#[test]
fn the_scan_finds_what_moved() {
    let top_level = ["bus".to_owned(), "cli".to_owned(), "app.rs".to_owned()];
    let words = path_like("see `src/cli.rs`, (`bus/redis.rs`), app.rs. and h2-0.4.20/src/x.rs");
    assert_eq!(
        words,
        ["src/cli.rs", "bus/redis.rs", "app.rs", "h2-0.4.20/src/x.rs"]
    );
    let named: Vec<Option<PathBuf>> = words.iter().map(|w| ours(w, &top_level)).collect();
    assert_eq!(
        named,
        [
            Some(PathBuf::from("src/cli.rs")),
            Some(PathBuf::from("src/bus/redis.rs")),
            Some(PathBuf::from("src/app.rs")),
            None,
        ]
    );
}
