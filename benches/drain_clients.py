#!/usr/bin/env python3
"""Clients for benches/drain.sh: N streams on instance A that, as an EventSource behind a balancer
would, reconnect to instance B once A ends them, after the last `retry:` A told them.

  drain_clients.py N URL_A URL_B READY_FILE SIGNAL_FILE [--max-time S]

Opens N streams to URL_A (GET, Accept: text/event-stream) and touches READY_FILE once every one
has its first bytes (opening at most 256 at a time). Then, for each stream A ends (end of body or of the connection), waits the
last `retry:` it read and opens URL_B; a stream to B counts as opened when B's first bytes come.
When every client is on B (or after --max-time), prints one JSON object: the instants (seconds
after the signal, whose wall-clock time the driver writes to SIGNAL_FILE before it signals A) at
which A's streams ended and B's opened, binned per 100 ms and per second, with the peaks.
Plain asyncio: no third-party module. Raises its own descriptor limit.
"""
import asyncio
import json
import re
import resource
import sys
import time
from urllib.parse import urlsplit

RETRY = re.compile(rb"(?:^|\n)retry: (\d+)\n")
# What a browser waits when no retry: came (Chromium's default).
DEFAULT_RETRY_MS = 3000


def request(url):
    parts = urlsplit(url)
    head = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    ).encode()
    return parts.hostname, parts.port, head


async def open_stream(url):
    """Connects and returns (reader, writer, first bytes) once the body's first bytes came."""
    host, port, head = request(url)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head)
    await writer.drain()
    received = b""
    while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
        chunk = await reader.read(4096)
        if not chunk:
            raise ConnectionError(f"{url} closed before its first bytes")
        received += chunk
    return reader, writer, received


async def client(a_url, b_url, ready, connect_sem, ends, opens, held):
    async with connect_sem:
        reader, writer, received = await open_stream(a_url)
    retry_ms = DEFAULT_RETRY_MS
    tail = received
    await ready_barrier(ready)
    # Read A's stream to its end, keeping the last retry: seen.
    while True:
        for match in RETRY.finditer(tail):
            retry_ms = int(match.group(1))
        # A chunked body's last chunk ends the stream; the connection may stay open.
        if tail.endswith(b"\r\n0\r\n\r\n"):
            break
        chunk = await reader.read(65536)
        if not chunk:
            break
        tail = tail[-64:] + chunk
    ends.append(time.time())
    writer.close()
    await asyncio.sleep(retry_ms / 1000)
    # No limit here: clients that their servers let go reconnect each on its own, as a crowd.
    b_reader, b_writer, _ = await open_stream(b_url)
    opens.append(time.time())
    held.append(b_writer)


class Barrier:
    """Counts clients that have their first bytes; `opened` is set when all have."""

    def __init__(self, n):
        self.left = n
        self.opened = asyncio.Event()
        self.go = asyncio.Event()


async def ready_barrier(barrier):
    barrier.left -= 1
    if barrier.left == 0:
        barrier.opened.set()
    await barrier.go.wait()


def bins(instants, t0, width):
    counts = {}
    for t in instants:
        k = int((t - t0) // width)
        counts[k] = counts.get(k, 0) + 1
    return [counts.get(k, 0) for k in range(max(counts, default=-1) + 1)] if counts else []


async def main():
    n, a_url, b_url, ready_file, signal_file = (
        int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    max_time = float(sys.argv[sys.argv.index("--max-time") + 1]) if "--max-time" in sys.argv else 120
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The first connections to A are opened at most this many at a time: the kernel's listen
    # queue sees a steady flow, not N SYNs at once, while the streams are being set up.
    connect_sem = asyncio.Semaphore(256)
    barrier = Barrier(n)
    ends, opens, held = [], [], []
    tasks = [asyncio.create_task(client(a_url, b_url, barrier, connect_sem, ends, opens, held))
             for _ in range(n)]
    await asyncio.wait_for(barrier.opened.wait(), max_time)
    barrier.go.set()
    open(ready_file, "w").close()
    done, pending = await asyncio.wait(tasks, timeout=max_time)
    failed = [t.exception() for t in done if t.exception() is not None]
    for task in pending:
        task.cancel()
    with open(signal_file) as f:
        t0 = float(f.read().strip())
    per_100ms = bins(opens, t0, 0.1)
    per_s = bins(opens, t0, 1.0)
    report = {
        "clients": n,
        "ended_on_a": len(ends),
        "opened_on_b": len(opens),
        "failed": len(failed),
        "first_failure": repr(failed[0]) if failed else None,
        "first_end_s": round(min(ends) - t0, 3) if ends else None,
        "last_end_s": round(max(ends) - t0, 3) if ends else None,
        "last_open_on_b_s": round(max(opens) - t0, 3) if opens else None,
        "peak_opens_on_b_per_s": max(per_s, default=0),
        "peak_opens_on_b_per_100ms": max(per_100ms, default=0),
        "opens_on_b_per_s": per_s,
        "opens_on_b_per_100ms": per_100ms,
        "ends_s": [round(t - t0, 3) for t in (min(ends), max(ends))] if ends else [],
        "ends_on_a_per_s": bins(ends, t0, 1.0),
    }
    print(json.dumps(report))
    for writer in held:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
