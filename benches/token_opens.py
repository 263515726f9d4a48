#!/usr/bin/env python3
"""The cost of verifying a token per stream: streams opened per second, and server CPU per open,
against one fresh server per mode in the same session: no token required ("none"), an HS256
token (--jwt-secret) and an ES256 one (--jwt-key, a P-256 key made by openssl). Streams carry
`Authorization: Bearer` when a token is needed; how they are opened and measured is
benches/opens.py. Standard library and the openssl CLI only.

  benches/token_opens.py [BINARY=target/release/sse-broadcast] [SECS=5] [CONCURRENCY=16] [REPS=3]
"""
import os
import subprocess
import tempfile

from opens import b64, claims, hs256, measure


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


def bearer(token):
    """The header that carries `token` (none without one), for every open."""
    line = f"Authorization: Bearer {token}\r\n" if token else ""
    return lambda n: line


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
    measure({mode: (args, env, bearer(token)) for mode, (args, env, token) in modes.items()})
