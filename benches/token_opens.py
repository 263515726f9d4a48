#!/usr/bin/env python3
"""The cost of verifying a token per stream: streams opened per second, and server CPU per open,
against one fresh server per mode in the same session: no token required ("none"), an HS256
token (--jwt-secret) and an ES256 one (--jwt-key, a P-256 key made by openssl). Each open is a
new connection: GET /events (with `Authorization: Bearer` when a token is needed), the 200 head
read, then the connection closed. CONCURRENCY clients open streams back to back for SECS; the
server is pinned to CPU 0 and this script to CPU 1. Standard library and the openssl CLI only.

  benches/token_opens.py [BINARY=target/release/sse-broadcast] [SECS=5] [CONCURRENCY=16] [REPS=3]
"""
import base64
import hashlib
import hmac
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
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


def es256(key_path):
    """openssl signs in DER (a SEQUENCE of two INTEGERs); a JWS carries r and s, 32 bytes each."""
    signed = b64(b'{"alg":"ES256","typ":"JWT"}') + "." + claims()
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=signed.encode(),
                         capture_output=True, check=True).stdout
    at = 2 if der[1] < 0x80 else 3
    parts = []
    for _ in range(2):
        assert der[at] == 0x02
        length = der[at + 1]
        parts.append(int.from_bytes(der[at + 2:at + 2 + length], "big").to_bytes(32, "big"))
        at += 2 + length
    return signed + "." + b64(parts[0] + parts[1])


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


def open_streams(port, token):
    """Opens streams back to back from `concurrency` sockets for `secs`; returns the count."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{auth}\r\n".encode()
    chooser = selectors.DefaultSelector()

    def connect():
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
            chooser.unregister(key.fileobj)
            key.fileobj.close()
            opened += 1
            connect()
    for key in list(chooser.get_map().values()):
        key.fileobj.close()
    return opened


with tempfile.TemporaryDirectory() as keys:
    secret = os.urandom(32)
    private, public = f"{keys}/es256.pem", f"{keys}/es256.pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    private], check=True)
    subprocess.run(["openssl", "ec", "-in", private, "-pubout", "-out", public], check=True,
                   capture_output=True)
    # Mode: the server's flags and environment (the secret stays off argv, as the docs advise),
    # and the token. The HS256 key is the hex text's bytes, as --jwt-secret takes it.
    modes = {
        "none": ([], {}, None),
        "HS256": ([], {"SSE_BROADCAST_JWT_SECRET": secret.hex()}, hs256(secret.hex().encode())),
        "ES256": (["--jwt-key", public], {}, es256(private)),
    }
    for rep in range(1, reps + 1):
        for mode, (args, env, token) in modes.items():
            server, port = start(args, env)
            try:
                time.sleep(0.5)
                before = cpu_ticks(server.pid)
                began = time.monotonic()
                opened = open_streams(port, token)
                elapsed = time.monotonic() - began
                time.sleep(0.5)  # the last streams' teardown is part of their cost
                cpu = (cpu_ticks(server.pid) - before) / hz
                print(f"rep {rep} {mode:>5}: {opened / elapsed:8.0f} opens/s, "
                      f"server CPU {cpu:.2f} s, {cpu / opened * 1e6:6.1f} us per open", flush=True)
            finally:
                server.kill()
                server.wait()
