//! `--on-occupied` / `--on-vacated`: a command when a channel gets its first reader or loses
//! its last, run by the real binary with `sh`, its runs written to a file the test reads. One
//! hook at a time per channel, changes made meanwhile folded; readers coming and going fast;
//! the hook's environment and logged exit; across two instances on one redis-server, one run
//! per change whichever instance the readers are on, and an instance killed with `kill -9`
//! counted out when its lease ends.

use crate::common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{BIN, Client, Input, Server, WAIT};

/// The lease of a dead instance's readers (15 s), one renewal period on top, and room for a
/// loaded machine.
const LEASE_WAIT: Duration = Duration::from_secs(45);

/// The file's lines once it has at least `count`, within `within`.
fn wait_lines_within(path: &Path, count: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, not {count}: {lines:?}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_lines(path: &Path, count: usize) -> Vec<String> {
    wait_lines_within(path, count, WAIT)
}

/// The file's lines once `done` holds for them, within `WAIT`.
fn wait_lines_where(path: &Path, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if done(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "never {what}: {lines:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Hooks that append `occupied CHANNEL` / `vacated CHANNEL` (and `$INSTANCE`) to `record`.
fn recording(record: &Path) -> [String; 4] {
    let r = record.display();
    [
        "--on-occupied".into(),
        format!("echo \"occupied $SSE_CHANNEL $INSTANCE\" >> {r}"),
        "--on-vacated".into(),
        format!("echo \"vacated $SSE_CHANNEL $INSTANCE\" >> {r}"),
    ]
}

fn args(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// Lines alternate between the two hooks, the first an `occupied` one.
fn assert_alternate(lines: &[String]) {
    for (n, line) in lines.iter().enumerate() {
        let expected = if n % 2 == 0 { "occupied" } else { "vacated" };
        assert!(line.starts_with(expected), "line {n} of {lines:#?}");
    }
}

/// Readers coming and going as fast as they can: `tasks` tasks on `urls` in turn, each opening
/// and closing ten streams.
async fn churn(urls: &[String], tasks: usize) {
    let tasks: Vec<_> = (0..tasks)
        .map(|n| {
            let url = urls[n % urls.len()].clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    drop(Client::connect(&url, &[]).await);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// After a churn on `channel`: its hooks ran in turn, and the last one tells the truth: vacant.
/// Then a reader (`sentinel`, opened here) is the sentinel: its `occupied` comes next. Returns
/// the channel's lines, checked to alternate, and the sentinel.
async fn settles_vacant_then_occupied(
    record: &Path,
    channel: &str,
    sentinel: impl Future<Output = Client>,
) -> (Vec<String>, Client) {
    let word = format!(" {channel} ");
    let of_channel = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains(&word))
            .cloned()
            .collect()
    };
    wait_lines_where(record, "vacant at last", |lines| {
        of_channel(lines)
            .last()
            .is_some_and(|l| l.starts_with("vacated"))
    });
    let sentinel = sentinel.await;
    let lines = of_channel(&wait_lines_where(record, "occupied again", |lines| {
        of_channel(lines)
            .last()
            .is_some_and(|l| l.starts_with("occupied"))
    }));
    assert_alternate(&lines);
    (lines, sentinel)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_runs_one_hook_per_change_and_readers_coming_and_going_fast_fold() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let server = Server::start(&args(&recording(&record)));
    let reader = server.events("/events/news").await;
    assert_eq!(wait_lines(&record, 1), ["occupied news "]);
    let second = server.events("/events/news").await;
    server.wait_for_consumers(2).await;
    drop(reader);
    server.wait_for_consumers(1).await;
    drop(second);
    // The second reader neither occupied nor vacated anything: the next line is the vacancy.
    assert_eq!(wait_lines(&record, 2), ["occupied news ", "vacated news "]);

    // 200 readers on 20 tasks, each opening and closing streams as fast as it can.
    churn(&[server.url("/events/fast")], 20).await;
    server.wait_for_consumers(0).await;
    let (lines, last) =
        settles_vacant_then_occupied(&record, "fast", server.events("/events/fast")).await;
    assert!(
        lines.len() < 2 * 200,
        "every reader ran the hooks: {}",
        lines.len()
    );
    drop(last);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_hook_runs_alone_and_what_changed_meanwhile_runs_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let gate = dir.path().join("gate");
    let (r, g) = (record.display(), gate.display());
    let occupied = format!(
        "echo start occupied >> {r}; while [ ! -e {g} ]; do sleep 0.05; done; echo end occupied >> {r}"
    );
    let vacated = format!("echo start vacated >> {r}; echo end vacated >> {r}");
    let server = Server::start(&["--on-occupied", &occupied, "--on-vacated", &vacated]);

    // Vacated and occupied again while the hook runs: the same state as it was run for, so
    // nothing more runs when it ends.
    let first = server.events("/events/slow").await;
    wait_lines(&record, 1);
    drop(first);
    server.wait_for_consumers(0).await;
    let second = server.events("/events/slow").await;
    server.wait_for_consumers(1).await;
    std::fs::write(&gate, "").unwrap();
    wait_lines(&record, 2);
    drop(second);
    assert_eq!(
        wait_lines(&record, 4),
        [
            "start occupied",
            "end occupied",
            "start vacated",
            "end vacated"
        ]
    );

    // Vacated while it runs: the vacated hook runs when it ends.
    std::fs::remove_file(&gate).unwrap();
    let third = server.events("/events/slow").await;
    wait_lines(&record, 5);
    drop(third);
    server.wait_for_consumers(0).await;
    std::fs::write(&gate, "").unwrap();
    assert_eq!(
        wait_lines(&record, 8)[4..],
        [
            "start occupied",
            "end occupied",
            "start vacated",
            "end vacated"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_gets_no_server_secret_and_its_exit_status_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    let mut command = Command::new(BIN);
    command
        .args(["--port", "0", "--on-occupied"])
        .arg(format!("env > {}; exit 3", env.display()))
        .env("SSE_BROADCAST_PUBLISH_TOKEN", "hook-must-not-see-this")
        .env("SSE_BROADCAST_ON_VACATED", "exit 0")
        .env("KEPT", "yes");
    let server = Server::spawn(command, Input::Null);
    let reader = server.events("/events/env").await;
    server.wait_for_log("--on-occupied");
    let log = server.wait_for_log("hook failed");
    assert!(log.contains("status=3"), "{log}");
    let seen = std::fs::read_to_string(&env).unwrap();
    assert!(seen.lines().any(|l| l == "SSE_CHANNEL=env"), "{seen}");
    assert!(seen.lines().any(|l| l == "KEPT=yes"), "{seen}");
    assert!(!seen.contains("SSE_BROADCAST_"), "{seen}");
    assert!(!server.stderr().contains("hook-must-not-see-this"));
    drop(reader);
    server.wait_for_log("hook ended");
}

/// An instance on `redis` with the recording hooks and `INSTANCE=name` in its environment.
fn instance(redis: &Redis, name: &str, hooks: &[String]) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["--port", "0", "--redis", &redis.url()])
        .args(hooks)
        .env("INSTANCE", name);
    Server::spawn(command, Input::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn across_instances_readers_are_counted_everywhere_and_each_change_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let redis = Redis::start();
    let hooks = recording(&record);
    let a = instance(&redis, "a", &hooks);
    let b = instance(&redis, "b", &hooks);

    let on_a = a.events("/events/x").await;
    assert_eq!(wait_lines(&record, 1), ["occupied x a"]);
    let on_b = b.events("/events/x").await;
    // Both instances hold a lease on the channel (B's reader is counted in Redis) before A's
    // reader leaves.
    common::listener::wait_until("both instances' leases", || {
        let count = redis.cli(&["ZCARD", "sse-broadcast:{x}:occupants"]);
        (count.trim() == "2").then_some(())
    })
    .expect("B's reader counted in Redis");
    drop(on_a);
    a.wait_for_consumers(0).await;
    drop(on_b);
    // Neither B's reader nor A's leaving changed anything over both instances.
    assert_eq!(wait_lines(&record, 2), ["occupied x a", "vacated x b"]);

    // Readers on both instances, coming and going fast: the hooks still alternate.
    churn(&[a.url("/events/y"), b.url("/events/y")], 10).await;
    a.wait_for_consumers(0).await;
    b.wait_for_consumers(0).await;
    let (_, sentinel) = settles_vacant_then_occupied(&record, "y", a.events("/events/y")).await;
    drop(sentinel);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_never_run_a_channels_hooks_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let r = record.display();
    let redis = Redis::start();
    // Each hook writes where it starts and ends, with time between for another to cut in.
    let hooks = [
        "--on-occupied".to_owned(),
        format!("echo \"start occupied $INSTANCE\" >> {r}; sleep 0.2; echo end >> {r}"),
        "--on-vacated".to_owned(),
        format!("echo \"start vacated $INSTANCE\" >> {r}; sleep 0.2; echo end >> {r}"),
    ];
    let a = instance(&redis, "a", &hooks);
    let b = instance(&redis, "b", &hooks);
    let urls = [a.url("/events/z"), b.url("/events/z")];
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let url = urls[n % 2].clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let client = Client::connect(&url, &[]).await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    drop(client);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    a.wait_for_consumers(0).await;
    b.wait_for_consumers(0).await;
    // Every hook run is a pair of lines, a start and its end: another run cutting in would
    // break a pair.
    let settled = |lines: &[String], last: &str| {
        lines.len().is_multiple_of(2)
            && lines.last().is_some_and(|l| l == "end")
            && lines[lines.len() - 2].starts_with(last)
    };
    wait_lines_where(&record, "vacant at last", |lines| {
        settled(lines, "start vacated")
    });
    let sentinel = b.events("/events/z").await;
    let lines = wait_lines_where(&record, "occupied again", |lines| {
        settled(lines, "start occupied")
    });
    for pair in lines.chunks(2) {
        assert!(
            pair[0].starts_with("start") && pair[1] == "end",
            "{lines:#?}"
        );
    }
    let starts: Vec<&String> = lines.iter().step_by(2).collect();
    for (n, start) in starts.iter().enumerate() {
        let expected = if n % 2 == 0 {
            "start occupied"
        } else {
            "start vacated"
        };
        assert!(start.starts_with(expected), "{lines:#?}");
    }
    drop(sentinel);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_killed_with_its_readers_leaves_the_channel_vacant_when_its_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let record: PathBuf = dir.path().join("record");
    let redis = Redis::start();
    let hooks = recording(&record);
    let mut a = instance(&redis, "a", &hooks);
    let b = instance(&redis, "b", &hooks);
    let _reader = a.events("/events/k").await;
    assert_eq!(wait_lines(&record, 1), ["occupied k a"]);
    a.signal("KILL");
    a.wait_exit();
    // B never had a reader there: it finds the channel vacant once A's lease ends.
    assert_eq!(
        wait_lines_within(&record, 2, LEASE_WAIT),
        ["occupied k a", "vacated k b"]
    );
    // And the channel works as before: a reader on B occupies it again.
    let _again = b.events("/events/k").await;
    assert_eq!(wait_lines(&record, 3)[2], "occupied k b");
}

/// The processes of process group `group` (from /proc: the fifth field of `stat`).
fn processes_of_group(group: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp ...`: comm may hold spaces, so split after its ')'.
        let Some((comm, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2) == Some(&group.to_string().as_str()) {
            let name = comm.split_once('(').map_or("", |(_, name)| name);
            found.push((pid, name.to_owned()));
        }
    }
    found
}

/// Ends a process group the recipe started in a session of its own, should the test fail
/// before its `--on-vacated` did.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tail_recipe_follows_the_log_only_while_someone_reads() {
    use common::recipe::{Recipe, Script};
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("app.log");
    std::fs::write(&log, "an old line\n").unwrap();
    let port = common::redis::free_port();
    let recipe = Recipe::containing("docs/presence-and-hooks.md", "sh", "tail-while-watched.sh")
        .port(8080, port)
        .path("/var/log/app.log", log.to_str().unwrap());
    let mut script = Script::start(&recipe, &[]);
    script.wait_for_port(port);
    let base = format!("http://127.0.0.1:{port}");
    let mut reader = Client::connect(&format!("{base}/events/app"), &[]).await;
    assert_eq!(reader.status, 200);

    // The hook wrote the producer's process group; wait until its tail has the log open.
    let pid_file = script.file("tail-app.pid");
    let group: u32 = common::listener::wait_until("the producer's pid file", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .unwrap();
    let mut guard = GroupGuard(Some(group));
    common::listener::wait_until("tail to open the log", || {
        processes_of_group(group)
            .into_iter()
            .filter(|(_, name)| name == "tail")
            .find(|(pid, _)| {
                std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to == log))
            })
    })
    .unwrap_or_else(|| panic!("{}", script.log()));
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"a new line\n").unwrap();
    reader.next_is("a new line").await;

    // The page is closed: the hook ends the whole group, tail included.
    drop(reader);
    common::listener::wait_until("the producer to end", || {
        processes_of_group(group).is_empty().then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "still running: {:?}\n{}",
            processes_of_group(group),
            script.log()
        )
    });
    guard.0 = None;
    assert!(script.log().contains("hook ended"), "{}", script.log());
}
