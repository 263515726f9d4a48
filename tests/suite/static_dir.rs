//! `--static-dir` keeps to its folder on the real binary (issue 18): a symlink `etc -> /etc`
//! does not serve `/etc/passwd`, `/.env` and `/.git/config` are not served, however the path
//! is written; `--static-follow-symlinks` and `--static-hidden` serve them when asked. A
//! symlink that stays inside DIR is served, unless what it points to is hidden.

use crate::common;

use std::os::unix::fs::symlink;

use common::Server;

/// A site: a page, a dotfile, a .git folder, and symlinks out of it and within it.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("index.html"), "<p>site</p>").unwrap();
    std::fs::write(root.join("page.html"), "a page").unwrap();
    std::fs::write(root.join(".env"), "DATABASE_PASSWORD=hunter2").unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config"), "[core] git-config").unwrap();
    std::fs::create_dir(root.join("out")).unwrap();
    symlink("/etc", root.join("etc")).unwrap();
    symlink("page.html", root.join("alias.html")).unwrap();
    symlink(".env", root.join("settings.txt")).unwrap();
    symlink("/etc/passwd", root.join("out/index.html")).unwrap();
    dir
}

fn server(site: &tempfile::TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["-i", "1h", "--static-dir", site.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

async fn get(server: &Server, path: &str) -> (u16, String) {
    let response =
        tokio::time::timeout(common::WAIT, reqwest::get(format!("{}{path}", server.base)))
            .await
            .expect("an answer in time")
            .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

const OUTSIDE: [&str; 4] = ["/etc/passwd", "/etc/hostname", "/out/", "/out/index.html"];
const HIDDEN: [&str; 6] = [
    "/.env",
    "/%2eenv",
    "/.git/config",
    "/.git/",
    "/%2Egit/config",
    "/settings.txt",
];

#[tokio::test(flavor = "multi_thread")]
async fn nothing_outside_the_folder_and_no_dotfile_is_served() {
    let site = site();
    let server = server(&site, &[]);
    for path in OUTSIDE.iter().chain(&HIDDEN) {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            !body.contains("root:") && !body.contains("hunter2") && !body.contains("git-config"),
            "{path}: {body}"
        );
    }
    assert_eq!(get(&server, "/").await, (200, "<p>site</p>".into()));
    assert_eq!(get(&server, "/page.html").await, (200, "a page".into()));
    // A symlink that stays inside is served.
    assert_eq!(get(&server, "/alias.html").await, (200, "a page".into()));
    // No warning per refused request: a client must not be able to fill the log.
    assert!(
        !server.stderr().contains("rejecting"),
        "{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_symlinks_serves_outside_and_hidden_serves_dotfiles() {
    let site = site();
    let follow = server(&site, &["--static-follow-symlinks"]);
    let (status, body) = get(&follow, "/etc/passwd").await;
    assert_eq!(status, 200);
    assert!(body.contains("root:"), "{body}");
    assert_eq!(get(&follow, "/out/").await.0, 200);
    for path in HIDDEN {
        assert_eq!(get(&follow, path).await.0, 404, "{path}");
    }

    let hidden = server(&site, &["--static-hidden"]);
    let (status, body) = get(&hidden, "/.env").await;
    assert_eq!((status, body.as_str()), (200, "DATABASE_PASSWORD=hunter2"));
    assert_eq!(get(&hidden, "/.git/config").await.0, 200);
    assert_eq!(get(&hidden, "/settings.txt").await.0, 200);
    for path in OUTSIDE {
        assert_eq!(get(&hidden, path).await.0, 404, "{path}");
    }
    // `..` stays refused whatever is allowed (written so that the client passes it on as is).
    let both = server(&site, &["--static-hidden", "--static-follow-symlinks"]);
    assert_eq!(get(&both, "/out/..%2f..%2f..%2fetc/passwd").await.0, 404);
}

#[test]
fn the_flags_need_a_static_dir() {
    for flag in ["--static-follow-symlinks", "--static-hidden"] {
        let output = std::process::Command::new(common::BIN)
            .args(["--port", "0", "-i", "1s", flag])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--static-dir"), "{flag}: {stderr}");
    }
}
