//! `--static-dir DIR`: files under DIR at `/` (warp's `fs::dir`, with `index.html` for a
//! folder), and nothing that is not under DIR (DESIGN.md §14). warp refuses `..` but follows a
//! symlink wherever it points, and serves dotfiles (`.env`, `.git/`); this guard, run first,
//! answers 404 for a path that resolves outside DIR once every symlink is followed, and for a
//! hidden name, unless `--static-follow-symlinks` or `--static-hidden` allow it.
//!
//! A symlink that stays inside DIR is served: it shows nothing DIR does not already serve
//! (the rule is where a path resolves, as the contract says, not how; miniserve's
//! `--no-symlinks` refuses them all). What it points to must not be hidden either, so
//! `page -> .env` is refused as `.env` is. The check and warp's open are two steps: a file
//! swapped for a symlink in between is served once; only who can write DIR can do that.

use std::path::{Component, Path};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::serve_config::StaticAccess;

/// The files under `dir`, as `access` allows; every other path is left to the next route.
pub fn route(dir: &Path, access: StaticAccess) -> BoxedFilter<(Response,)> {
    // app.rs has checked that DIR can be read; should it vanish meanwhile, nothing resolves
    // under the uncanonical path, and everything is refused.
    let root = Arc::new(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
    // The full path, not `path::tail`, which would leave none for `fs::dir` after it.
    let allowed = warp::path::full()
        .and_then(move |full: FullPath| {
            let root = root.clone();
            async move {
                if serves(&root, full.as_str(), access).await {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .untuple_one();
    // Paths before methods, here as in every route: a path nobody serves is a 404 whatever the
    // method (a POST to a bad channel name included), not a 405 from the page.
    allowed
        .and(warp::fs::dir(dir.to_path_buf()))
        .and(warp::get())
        .map(Reply::into_response)
        .boxed()
}

/// Whether the request path (percent-encoded, as sent) may be served from `root`. A path that
/// does not exist passes: warp answers it 404 itself.
async fn serves(root: &Path, path: &str, access: StaticAccess) -> bool {
    let Ok(path) = percent_decode_str(path).decode_utf8() else {
        return false;
    };
    let mut candidate = root.to_path_buf();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        // `..` and backslashes warp refuses too, but with a warning per request.
        if segment.starts_with("..") || segment.contains('\\') {
            return false;
        }
        if segment.starts_with('.') && !access.hidden {
            return false;
        }
        candidate.push(segment);
    }
    // The path, and for a folder the index.html warp would open in it: each must pass.
    let Ok(resolved) = tokio::fs::canonicalize(&candidate).await else {
        return true;
    };
    let index = match tokio::fs::metadata(&resolved).await {
        Ok(metadata) if metadata.is_dir() => tokio::fs::canonicalize(resolved.join("index.html"))
            .await
            .ok(),
        _ => None,
    };
    [Some(resolved), index]
        .iter()
        .flatten()
        .all(|resolved| match resolved.strip_prefix(root) {
            Ok(inside) => access.hidden || !inside.components().any(is_hidden),
            Err(_) => access.follow_symlinks,
        })
}

fn is_hidden(component: Component<'_>) -> bool {
    component.as_os_str().as_encoded_bytes().starts_with(b".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[tokio::test]
    async fn outside_and_hidden_are_refused_unless_allowed() {
        let site = tempfile::tempdir().unwrap();
        let root = site.path().canonicalize().unwrap();
        std::fs::write(root.join("page.html"), "page").unwrap();
        std::fs::write(root.join(".env"), "KEY=1").unwrap();
        std::fs::create_dir(root.join("docs")).unwrap();
        symlink("/etc", root.join("etc")).unwrap();
        symlink("page.html", root.join("alias.html")).unwrap();
        symlink(".env", root.join("innocent")).unwrap();
        symlink("/etc/hostname", root.join("docs/index.html")).unwrap();
        let plain = StaticAccess::default();
        let cases = [
            ("page.html", true),
            ("alias.html", true),
            ("missing.html", true),
            ("etc/hostname", false),
            ("etc", false),
            ("docs/", false),
            (".env", false),
            ("%2eenv", false),
            ("innocent", false),
            ("..%2fx", false),
        ];
        for (tail, expected) in cases {
            assert_eq!(serves(&root, tail, plain).await, expected, "{tail}");
        }
        let follow = StaticAccess {
            follow_symlinks: true,
            hidden: false,
        };
        assert!(serves(&root, "etc/hostname", follow).await);
        assert!(serves(&root, "docs/", follow).await);
        assert!(!serves(&root, ".env", follow).await);
        let hidden = StaticAccess {
            follow_symlinks: false,
            hidden: true,
        };
        assert!(serves(&root, ".env", hidden).await);
        assert!(serves(&root, "innocent", hidden).await);
        assert!(!serves(&root, "etc/hostname", hidden).await);
        assert!(!serves(&root, "..", hidden).await);
    }
}
