"""Streams opened per second, and server CPU per open, for benches/token_opens.py and
benches/authorize_opens.py: one fresh server per mode, pinned to CPU 0, this process to CPU 1.
CONCURRENCY clients open streams back to back for SECS; each open is a new connection: GET
/events with the mode's header, the 200 head read, then the connection closed. Standard library
only.

Both scripts take: [BINARY=target/release/sse-broadcast] [SECS=5] [CONCURRENCY=16] [REPS=3]
"""
import base64
import hashlib
import hmac
import itertools
import json
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


def claims():
    return b64(json.dumps({"exp": int(time.time()) + 3600,
                           "sse_broadcast": {"subscribe": ["*"]}}).encode())


def hs256(secret):
    signed = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + claims()
    return signed + "." + b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def start(args, env):
    server = subprocess.Popen(["taskset", "-c", "0", binary, "--port", "0", "-i", "1h", "-q",
                               "--keep-alive", "0", *args], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env})
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


def measure(modes):
    """Each mode (name: (server flags, server environment, header(n))), REPS times in turn, a
    fresh server each time; prints opens/s and server CPU per open, and the load average."""
    width = max(len(mode) for mode in modes)
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
                print(f"rep {rep} {mode:>{width}}: {opened / elapsed:8.0f} opens/s, "
                      f"server CPU {cpu:.2f} s, {cpu / opened * 1e6:6.1f} us per open", flush=True)
            finally:
                server.kill()
                server.wait()
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}", flush=True)
