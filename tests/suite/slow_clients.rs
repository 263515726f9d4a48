//! Slow clients (DESIGN §1): backpressure first, eviction second. A client that stops reading is
//! disconnected after `--stall-timeout` while the others get every event and memory stays flat;
//! a slow reader slows the input down and loses nothing; a client that resets its connection
//! harms no one.

use crate::common;

use std::io::{ErrorKind, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, TcpClient, WAIT, proc_status_kib};

/// The data of event `n`: `PAYLOAD` printable bytes, different for every event and position.
fn payload(n: u32, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = format!("{n:06}:");
    let n = n as usize;
    text.extend((text.len()..len).map(|i| ALPHABET[(n * 31 + i * 7 + i * i / 3) % 64] as char));
    text
}

/// `count` lines of `payload(1..=count, len)`, written to the child's stdin by a thread, which
/// then closes stdin. The thread blocks whenever the server stops reading (backpressure).
fn feed_lines(server: &mut Server, count: u32, len: usize) -> std::thread::JoinHandle<()> {
    let stdin = server.take_stdin();
    std::thread::spawn(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdin);
        for n in 1..=count {
            out.write_all(payload(n, len).as_bytes()).unwrap();
            out.write_all(b"\n").unwrap();
        }
        out.flush().unwrap();
    })
}

/// The exact bytes a stream carries for events `range` (no event name, hub ids).
fn wire(range: std::ops::RangeInclusive<u32>, len: usize) -> Vec<u8> {
    range
        .flat_map(|n| format!("id: {n}\ndata: {}\n\n", payload(n, len)).into_bytes())
        .collect()
}

/// Samples the server's VmRSS until stopped; returns the highest value seen, in KiB.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(proc_status_kib(pid, "VmRSS"));
            std::thread::sleep(Duration::from_millis(25));
        }
        peak
    })
}

#[tokio::test]
async fn a_stalled_client_is_dropped_while_the_others_get_everything_in_flat_memory() {
    // 78 MiB: a server that kept what the stalled client did not take would grow by that much;
    // one that keeps to its buffers grows by about 3 MiB (the bound below is ten times that).
    const EVENTS: u32 = 80_000;
    const LEN: usize = 1024;
    let mut server = Server::piped(&["--stall-timeout", "2s", "-q"]);

    // Sends its request, then never reads. A small receive buffer makes it fill up sooner.
    let stalled = TcpClient::get(&server, "/events", Some(4096));
    let stalled_address = stalled.local_addr().to_string();
    server.wait_for_consumers(1).await;
    let mut fast = server.events("/events").await;
    server.wait_for_consumers(2).await;

    let baseline = server.rss_kib();
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(server.pid(), stop_sampling.clone());
    let started = Instant::now();
    let feeder = feed_lines(&mut server, EVENTS, LEN);

    for n in 1..=EVENTS {
        let event = fast.next().await;
        if event.id != n.to_string() || event.data != payload(n, LEN) {
            panic!(
                "event {n}: got id {:?} and {} bytes of data {:?}...",
                event.id,
                event.data.len(),
                &event.data[..event.data.len().min(16)]
            );
        }
    }
    let elapsed = started.elapsed();
    stop_sampling.store(true, Ordering::Relaxed);
    let sampled_peak = sampler.join().unwrap();
    let high_water = server.status_kib("VmHWM");
    feeder.join().unwrap();

    let log = server.wait_for_log_where("a warning naming the stalled client", |log| {
        log.lines()
            .any(|line| line.contains("WARN") && line.contains(&stalled_address))
    });
    server.wait_for_consumers(1).await;
    let stats = server.stats().await;
    assert_eq!(stats["clients_dropped_stalled"], 1, "{stats}\n{log}");
    assert_eq!(stats["events_sent"], EVENTS, "{stats}");

    // The server closed the stalled connection: what the kernel still held, then the end.
    let mut stalled = stalled;
    let deadline = Instant::now() + WAIT;
    loop {
        match stalled.read_some(256 * 1024) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::ConnectionReset => break,
            Err(err) => panic!("the stalled connection is still open: {err}"),
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection never ended"
        );
    }
    let expected_prefix = wire(1..=EVENTS, LEN);
    assert!(
        expected_prefix.starts_with(&stalled.body),
        "what reached the stalled client is a clean prefix of the stream"
    );

    let peak = sampled_peak.max(high_water);
    let growth_mib = peak.saturating_sub(baseline) as f64 / 1024.0;
    let sent_mib = (EVENTS as usize * LEN) as f64 / (1024.0 * 1024.0);
    eprintln!(
        "RSS: baseline {baseline} KiB, peak {peak} KiB (sampled {sampled_peak}, VmHWM \
         {high_water}): grew {growth_mib:.1} MiB while {sent_mib:.1} MiB went through \
         in {elapsed:.1?}; the stalled client got {} KiB",
        stalled.body.len() / 1024
    );
    assert!(
        growth_mib < 33.0,
        "memory grew by {growth_mib:.1} MiB for {sent_mib:.1} MiB of input"
    );
}

/// The most a socket's kernel send buffer can grow to (`net.ipv4.tcp_wmem`), in bytes.
fn kernel_send_buffer_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|text| text.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

#[tokio::test]
async fn a_slow_reader_slows_the_input_and_loses_nothing() {
    const LEN: usize = 40 * 1024;
    const CLIENT_BUFFER: usize = 16;
    const RECEIVE_BUFFER: usize = 64 * 1024;
    let frame = wire(1..=1, LEN).len();
    // What may sit between the hub and the reader: its buffer, the kernel's buffers on both
    // ends, and what the HTTP layer queues (a batch, hyper's write buffer: under 1 MiB).
    let allowed = CLIENT_BUFFER * frame + kernel_send_buffer_max() + 2 * RECEIVE_BUFFER + (2 << 20);
    // The kernel may buffer megabytes for one socket (tcp_wmem grows to 4 MiB here), so the input
    // is three times all of that, whatever the machine, for the hub's own waiting to show: at
    // least 500 events of 40 KiB.
    let events = u32::try_from((3 * allowed).div_ceil(frame).max(500)).unwrap();
    // Built before the client connects: seconds of work on a busy machine, during which the
    // client would read nothing and look stalled.
    let expected = wire(1..=events, LEN);
    let mut server = Server::piped(&["--client-buffer", "16", "--keep-alive", "0", "-q"]);
    let mut slow = TcpClient::get(&server, "/events", Some(RECEIVE_BUFFER));
    server.wait_for_consumers(1).await;
    let started = Instant::now();
    let feeder = feed_lines(&mut server, events, LEN);

    let mut sent_at_half = None;
    let mut most_ahead = 0;
    let mut reads = 0_u32;
    let deadline = Instant::now() + 4 * WAIT * events / 500;
    while slow.body.len() < expected.len() {
        // A read, then a pause: a few MiB a second at most, well below what a pipe gives.
        let n = slow
            .read_some(RECEIVE_BUFFER)
            .expect("the slow client is never disconnected");
        assert!(
            n > 0,
            "the stream ended after {} of {} bytes",
            slow.body.len(),
            expected.len()
        );
        reads += 1;
        let at_half = sent_at_half.is_none() && slow.body.len() >= expected.len() / 2;
        if reads.is_multiple_of(4) || at_half {
            let sent = server.stats().await["events_sent"].as_u64().unwrap() as usize;
            most_ahead = most_ahead.max((sent * frame).saturating_sub(slow.body.len()));
            if at_half {
                sent_at_half = Some(sent);
            }
        }
        assert!(Instant::now() < deadline, "the slow client took too long");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    assert!(
        slow.body == expected,
        "the slow client's stream differs from the input first at byte {:?}",
        slow.body.iter().zip(&expected).position(|(a, b)| a != b)
    );
    feeder.join().unwrap();
    let stats = server.stats().await;
    assert_eq!(stats["clients_dropped_stalled"], 0, "{stats}");
    assert_eq!(stats["consumers"], 1, "{stats}");

    let sent_at_half = sent_at_half.unwrap();
    eprintln!(
        "slow reader: {:.1} MiB in {elapsed:.1?}; input ran at most {:.1} MiB ahead of it \
         (allowed {:.1} MiB); {sent_at_half} of {events} events were sent when it had read half",
        expected.len() as f64 / 1048576.0,
        most_ahead as f64 / 1048576.0,
        allowed as f64 / 1048576.0,
    );
    assert!(
        most_ahead <= allowed,
        "input ran {most_ahead} bytes ahead of the slow client (allowed {allowed})"
    );
    // Half the input is 1.5 times what may be in between: had input not waited, it would all
    // have been sent by then.
    assert!(
        sent_at_half < events as usize,
        "input did not wait for the slow client: all {events} were sent when it had read half"
    );
}

#[tokio::test]
async fn clients_that_reset_mid_stream_harm_no_one() {
    const EVENTS: u32 = 5000;
    const LEN: usize = 1024;
    let mut server = Server::piped(&["-q"]);
    let mut fast = server.events("/events").await;
    // One resets before its response, one after a few events, one after 64 KiB of the flood.
    let early = TcpClient::get(&server, "/events", None);
    let mut after_few = TcpClient::get(&server, "/events", Some(4096));
    let mut mid_stream = TcpClient::get(&server, "/events", Some(4096));
    early.reset();
    server.wait_for_consumers(3).await;
    let feeder = feed_lines(&mut server, EVENTS, LEN);

    let mut received = 0;
    let mut next_checked = |event: eventsource_stream::Event| {
        received += 1;
        assert_eq!(event.id, received.to_string());
        assert_eq!(event.data, payload(received, LEN));
        received
    };
    while after_few.body.len() < 4 * LEN {
        assert!(after_few.read_some(LEN).unwrap() > 0);
    }
    after_few.reset();
    // Reset while the server is still writing to it: the flood is far from over.
    while mid_stream.body.len() < 64 * LEN {
        assert!(mid_stream.read_some(8 * LEN).unwrap() > 0);
    }
    mid_stream.reset();
    while next_checked(fast.next().await) < EVENTS {}
    feeder.join().unwrap();

    assert!(server.is_running(), "{}", server.stderr());
    server.wait_for_consumers(1).await;
    let stats = server.stats().await;
    assert_eq!(stats["events_sent"], EVENTS, "{stats}");
    assert_eq!(stats["clients_dropped_stalled"], 0, "{stats}");
    // And it still serves new clients.
    let mut late = server
        .events_with("/events", &[("last-event-id", &(EVENTS - 2).to_string())])
        .await;
    let replayed = late.take(2).await;
    assert_eq!(
        common::ids(&replayed),
        [(EVENTS - 1).to_string(), EVENTS.to_string()]
    );
    assert!(server.is_running());
}

#[tokio::test]
async fn a_client_reading_a_long_replay_steadily_is_not_dropped() {
    // 10 MiB of history replayed to a client that reads it steadily at a few MiB a second,
    // while new lines keep coming: it is behind, but it makes progress the whole time.
    const KEPT: u32 = 10_000;
    const LIVE: u32 = 3000;
    const LEN: usize = 1024;
    const RECEIVE_BUFFER: usize = 64 * 1024;
    let mut server = Server::piped(&[
        "--history",
        "10000",
        "--stall-timeout",
        "2s",
        "--keep-alive",
        "0",
        "-q",
    ]);
    let total = KEPT + LIVE;
    let stdin = server.take_stdin();
    let (go_on, wait_to_go_on) = std::sync::mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdin);
        for n in 1..=total {
            if n == KEPT + 1 {
                out.flush().unwrap();
                wait_to_go_on.recv().unwrap();
            }
            out.write_all(payload(n, LEN).as_bytes()).unwrap();
            out.write_all(b"\n").unwrap();
        }
        out.flush().unwrap();
    });
    server.wait_for_stat("events_sent", u64::from(KEPT)).await;

    // Built before the client connects: seconds of work on a busy machine, during which the
    // client would read nothing and look stalled.
    let expected = wire(2..=total, LEN);
    let mut client = TcpClient::get(&server, "/events?lastEventId=1", Some(RECEIVE_BUFFER));
    server.wait_for_consumers(1).await;
    go_on.send(()).unwrap();
    let deadline = Instant::now() + 4 * WAIT;
    while client.body.len() < expected.len() {
        let n = client.read_some(RECEIVE_BUFFER).unwrap_or(0);
        if n == 0 {
            let stats = server.stats().await;
            panic!(
                "the stream ended after {} of {} bytes ({} events); {stats}\n{}",
                client.body.len(),
                expected.len(),
                common::count(&client.body, "id: "),
                server.stderr()
            );
        }
        assert!(Instant::now() < deadline, "the client took too long");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        client.body == expected,
        "the replay and the live events, each once, in order"
    );
    feeder.join().unwrap();
    assert_eq!(server.stats().await["clients_dropped_stalled"], 0);
}
