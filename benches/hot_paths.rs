//! Micro-benchmarks of the paths every event takes: encoding to wire bytes (once per event),
//! a channel's fan-out to every receiver, and the stdin line decoder. Figures only: nothing here
//! asserts a timing. `cargo bench --bench hot_paths`. No tracing subscriber is installed, so the
//! per-send log line the binary writes is not part of these figures.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sse_broadcast::channel::Channel;
use sse_broadcast::channel::ChannelConfig;
use sse_broadcast::control::Control;
use sse_broadcast::event::Event;
use sse_broadcast::lines::{Format, LineDecoder};

// The binary's allocator, so that allocation costs are the ones it pays.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A 64-byte text line, without its line end.
fn line_64() -> String {
    let line = "price update: EURUSD 1.08423 bid 1.08421 ask 1.08425 vol 1250000";
    assert_eq!(line.len(), 64);
    line.to_owned()
}

/// A 4 KiB payload of 64 lines (63 characters and a `\n` each): 64 `data:` lines on the wire.
fn payload_4k() -> String {
    let mut payload = String::with_capacity(4096);
    for i in 0..64 {
        payload.push_str(&format!("{i:02} {}\n", "x".repeat(60)));
    }
    assert_eq!(payload.len(), 4096);
    payload
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, data) in [("line_64B", line_64()), ("multiline_4KiB", payload_4k())] {
        let event = Event::new(data.clone());
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            let mut id = 1_000_000u64;
            b.iter(|| {
                id += 1;
                black_box(&event).encode(id)
            });
        });
    }
    group.finish();
}

/// One publish (id, encode once, history, send) and every receiver taking the frame, so the
/// channel never fills and input never waits. Throughput counts deliveries (one per receiver).
fn fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("publish_fan_out");
    for receivers in [1usize, 1000] {
        group.throughput(Throughput::Elements(receivers as u64));
        group.bench_function(format!("{receivers}_receivers"), |b| {
            b.to_async(&runtime).iter_custom(|iters| async move {
                // Set up per sample, outside the timed part.
                let config = ChannelConfig {
                    history: 1000,
                    history_bytes: 16 << 20,
                    client_buffer: 1024,
                    stall_timeout: Duration::from_secs(2),
                };
                let control = Arc::new(Channel::new(
                    "default".into(),
                    0,
                    config,
                    Arc::new(Control::new(None)),
                ));
                let mut subscriptions: Vec<_> = (0..receivers)
                    .map(|_| control.subscribe(None).expect("control open"))
                    .collect();
                let data = line_64();
                let start = Instant::now();
                for _ in 0..iters {
                    let reached = control.publish(|_| Event::new(data.clone())).await;
                    debug_assert_eq!(reached, Some(receivers));
                    for subscription in &mut subscriptions {
                        black_box(subscription.receiver.try_recv().expect("a frame"));
                    }
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_line");
    let text = format!("{}\n", &line_64()[..63]);
    let json = concat!(
        r#"{"data":{"pair":"EURUSD","bid":1.08421,"ask":1.08425},"event":"price","id":"q-1042"}"#,
        "\n"
    )
    .to_owned();
    for (name, format, piece) in [
        ("text_64B", Format::Text, text),
        ("json", Format::Json, json),
    ] {
        let mut decoder = LineDecoder::new(format, None, 4 << 20);
        assert!(decoder.decode(piece.clone().into_bytes()).is_some());
        group.throughput(Throughput::Bytes(piece.len() as u64));
        group.bench_function(name, |b| {
            // The reader hands each piece over as its own Vec; making it is not timed.
            b.iter_batched(
                || piece.clone().into_bytes(),
                |piece| decoder.decode(piece),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, encode, fan_out, decode);
criterion_main!(benches);
