#!/usr/bin/env python3
"""Load for benches/cluster.sh, on plain HTTP/1.1 over loopback (asyncio, one thread).

  cluster_load.py post PORT TOKEN CHANNELS SECONDS CONNECTIONS
      POSTs one small event at a time on each of CONNECTIONS keep-alive connections, each
      going round the channels c1..cCHANNELS from its own offset, for SECONDS; prints
      `posted N in S s: R events/s (non-200: M)`.
  cluster_load.py read EVENTS PORT:COUNT [PORT:COUNT...]
      Opens COUNT streams of /events on each local PORT, prints `ready` once all are open,
      then counts `data:` lines until every stream has EVENTS (or 5 s pass with none); prints
      `delivered N in S s: R deliveries/s (first to last), short: K streams`.
"""

import asyncio
import sys
import time


async def post_loop(port, token, paths, offset, deadline, counts):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b"x" * 32
    n = offset
    while time.monotonic() < deadline:
        path = paths[n % len(paths)]
        n += 1
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        counts[status == 200] += 1
    writer.close()


async def post(port, token, channels, seconds, connections):
    paths = [f"/events/c{n}" for n in range(1, channels + 1)]
    counts = [0, 0]
    start = time.monotonic()
    deadline = start + seconds
    step = max(1, channels // connections)
    await asyncio.gather(
        *(post_loop(port, token, paths, i * step, deadline, counts) for i in range(connections))
    )
    took = time.monotonic() - start
    print(f"posted {counts[1]} in {took:.2f} s: {counts[1] / took:.0f} events/s (non-200: {counts[0]})")


async def read_one(port, events, state, opened):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    await reader.readuntil(b"\r\n\r\n")
    opened.append(1)
    seen = 0
    tail = b"\n"  # the body starts at a line start
    while seen < events:
        chunk = await reader.read(65536)
        if not chunk:
            break
        now = time.monotonic()
        # `data:` at a line start, also when a chunk boundary splits it.
        joined = tail + chunk
        found = joined.count(b"\ndata:")
        tail = joined[-5:]
        seen += found
        state["delivered"] += found
        state["first"] = state["first"] or now
        state["last"] = now
    state["short"] += seen < events
    writer.close()


async def read(events, targets):
    state = {"delivered": 0, "first": 0.0, "last": 0.0, "short": 0}
    opened = []
    tasks = []
    for target in targets:
        port, count = (int(part) for part in target.split(":"))
        for _ in range(count):
            tasks.append(asyncio.create_task(read_one(port, events, state, opened)))
            await asyncio.sleep(0)
    while len(opened) < len(tasks):
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    pending = set(tasks)
    while pending:
        before = state["delivered"]
        _, pending = await asyncio.wait(pending, timeout=5)
        if pending and state["delivered"] == before:
            break  # 5 s without an event: what is missing is not coming
    took = max(state["last"] - state["first"], 1e-9)
    short = state["short"] + len(pending)
    print(
        f"delivered {state['delivered']} in {took:.2f} s: "
        f"{state['delivered'] / took:.0f} deliveries/s (first to last), short: {short} streams"
    )


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "post":
        port, token, channels, seconds, connections = args
        asyncio.run(post(int(port), token, int(channels), float(seconds), int(connections)))
    elif mode == "read":
        asyncio.run(read(int(args[0]), args[1:]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
