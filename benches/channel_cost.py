#!/usr/bin/env python3
"""The memory cost of a channel: RSS of a fresh server after N channels are made, in one of
three ways, against its RSS before. Plain sockets, no dependencies.

  benches/channel_cost.py MODE [N=1000] [BINARY=target/release/sse-broadcast] [CLIENT_BUFFER=1024]
  MODE  one:  N idle streams on the default channel (the cost of a stream alone)
        each: one idle stream on each of N channels (a channel and its stream)
        post: one event POSTed to each of N channels, nobody reading
        pair: one idle stream of two channels of its own on each of N streams (/events/a,b)
"""
import re
import socket
import subprocess
import sys
import time

mode = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
binary = sys.argv[3] if len(sys.argv) > 3 else "target/release/sse-broadcast"
client_buffer = sys.argv[4] if len(sys.argv) > 4 else "1024"

server = subprocess.Popen(
    [binary, "--port", "0", "-i", "1h", "-q", "--keep-alive", "0", "--client-buffer", client_buffer,
     "--max-channels", str(2 * n if mode == "pair" else n), "--publish-token", "t"],
    stderr=subprocess.PIPE, text=True)
port = int(re.search(r":(\d+)$", server.stderr.readline().strip()).group(1))


def rss_kib():
    with open(f"/proc/{server.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def answered(sock):
    sock.settimeout(10)
    head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head


try:
    time.sleep(1)
    before = rss_kib()
    streams = []
    body = b"one event of about sixty-four bytes, as the load benchmark sends."
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        if mode == "post":
            sock.sendall(f"POST /events/c{i} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer t\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            answered(sock)
            sock.close()
        else:
            path = {"one": "/events", "pair": f"/events/c{i},d{i}"}.get(mode, f"/events/c{i}")
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            streams.append(sock)
    for sock in streams:
        answered(sock)
    time.sleep(2)
    after = rss_kib()
    print(f"{mode}: {n} x, --client-buffer {client_buffer}: RSS {before} -> {after} KiB, "
          f"{(after - before) / n:.2f} KiB each")
finally:
    server.terminate()
    server.wait()
