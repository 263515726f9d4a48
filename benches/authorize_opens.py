#!/usr/bin/env python3
"""The cost of --authorize-url per stream: streams opened per second, and server CPU per open,
against one fresh server per mode in the same run: no access control ("none"), an HS256 token
(--jwt-secret), the authorization backend answering from the cache ("hook hit": every open
carries the same cookie, --authorize-cache 10m) and asked every time ("hook miss": every open
carries a cookie of its own). The backend is on loopback: a small asyncio server in this
script's own process group (keep-alive, `204 No Content` to every GET), pinned with this
script to CPU 1, the server to CPU 0. Each open is a new connection: GET /events, the 200 head
read, then the connection closed. Prints the load average before and after. Standard library
only.

  benches/authorize_opens.py [BINARY=target/release/sse-broadcast] [SECS=5] [CONCURRENCY=16] [REPS=3]
"""
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import multiprocessing
import os
import re
import selectors
import socket
import subprocess
import sys
import time

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/sse-broadcast"
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 16
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
hz = os.sysconf("SC_CLK_TCK")
os.sched_setaffinity(0, {1})


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(secret):
    claims = b64(json.dumps({"exp": int(time.time()) + 3600,
                             "sse_broadcast": {"subscribe": ["*"]}}).encode())
    signed = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + claims
    return signed + "." + b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def backend(ready):
    """Answers every request on a kept-alive connection with 204 (asked: the request's count)."""
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        ready.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def start(args, env=None):
    server = subprocess.Popen(["taskset", "-c", "0", binary, "--port", "0", "-i", "1h", "-q",
                               "--keep-alive", "0", *args], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **(env or {})})
    port = int(re.search(r":(\d+)$", server.stderr.readline().strip()).group(1))
    return server, port


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def open_streams(port, header):
    """Opens streams back to back from `concurrency` sockets for `secs`; returns the count.
    `header(n)` is the n-th open's extra header line ("" for none)."""
    chooser = selectors.DefaultSelector()
    count = itertools.count()

    def connect():
        request = (f"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                   f"{header(next(count))}\r\n").encode()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sock.sendall(request)
        chooser.register(sock, selectors.EVENT_READ, bytearray())

    for _ in range(concurrency):
        connect()
    opened, deadline = 0, time.monotonic() + secs
    while time.monotonic() < deadline:
        for key, _ in chooser.select(timeout=1):
            head = key.data
            head += key.fileobj.recv(4096)
            if b"\r\n\r\n" not in head:
                continue
            assert head.startswith(b"HTTP/1.1 200"), bytes(head[:200])
            # The hook's refusal an EventSource survives is a 200 too: it must not count.
            assert b"did not decide" not in head, bytes(head)
            chooser.unregister(key.fileobj)
            key.fileobj.close()
            opened += 1
            connect()
    for key in list(chooser.get_map().values()):
        key.fileobj.close()
    return opened


if __name__ == "__main__":
    there, here = multiprocessing.Pipe()
    hook = multiprocessing.Process(target=backend, args=(here,), daemon=True)
    hook.start()
    url = f"http://127.0.0.1:{there.recv()}/authorize"
    secret = os.urandom(32).hex()
    token = hs256(secret.encode())
    modes = {
        "none": ([], {}, lambda n: ""),
        "HS256": ([], {"SSE_BROADCAST_JWT_SECRET": secret}, lambda n: f"Authorization: Bearer {token}\r\n"),
        "hook hit": (["--authorize-url", url, "--authorize-cache", "10m"], {},
                     lambda n: "Cookie: session=one\r\n"),
        "hook miss": (["--authorize-url", url, "--authorize-cache", "10m"], {},
                      lambda n: f"Cookie: session={n}\r\n"),
    }
    print(f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}", flush=True)
    for rep in range(1, reps + 1):
        for mode, (args, env, header) in modes.items():
            server, port = start(args, env)
            try:
                time.sleep(0.5)
                before = cpu_ticks(server.pid)
                began = time.monotonic()
                opened = open_streams(port, header)
                elapsed = time.monotonic() - began
                time.sleep(0.5)  # the last streams' teardown is part of their cost
                cpu = (cpu_ticks(server.pid) - before) / hz
                print(f"rep {rep} {mode:>9}: {opened / elapsed:8.0f} opens/s, "
                      f"server CPU {cpu:.2f} s, {cpu / opened * 1e6:6.1f} us per open", flush=True)
            finally:
                server.kill()
                server.wait()
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}", flush=True)
