#!/usr/bin/env python3
"""The cost of --authorize-url per stream: streams opened per second, and server CPU per open,
against one fresh server per mode in the same run: no access control ("none"), an HS256 token
(--jwt-secret), the authorization backend answering from the cache ("hook hit": every open
carries the same cookie, --authorize-cache 10m) and asked every time ("hook miss": every open
carries a cookie of its own). The backend is on loopback: a small asyncio server in this
script's own process group (keep-alive, `204 No Content` to every GET), pinned with this
script to CPU 1, the server to CPU 0. How streams are opened and measured is
benches/opens.py. Standard library only.

  benches/authorize_opens.py [BINARY=target/release/sse-broadcast] [SECS=5] [CONCURRENCY=16] [REPS=3]
"""
import asyncio
import multiprocessing
import os

from opens import hs256, measure


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
    measure(modes)
