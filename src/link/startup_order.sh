#!/usr/bin/env bash
# Writes src/link/startup.ld: a linker script that places together, ahead of the rest of the code,
# the functions an idle server runs from its start until it waits for clients (the serve path
# with the default flags, as `bench.sh` starts it), then those that open and hold one idle
# stream, in the order valgrind's callgrind first records them. build.rs hands it to the
# linker (see build.rs for why).
#
#   SSE_BROADCAST_UNORDERED=1 cargo rustc --release --bin sse-broadcast -- -C strip=none
#       # symbols kept, laid out as the compiler left it (valgrind does not see functions
#       # placed ahead of `.text`)
#   src/link/startup_order.sh target/release/sse-broadcast
#   cargo build --release                                         # relinked, stripped, ordered
#
# A Rust function's section is named by its symbol, whose last part is a hash of the build
# (toolchain, dependencies, profile): the script matches any hash, so the list holds across
# builds. Run it again when a change moves start-up work into functions it does not name: a
# name no function has any more matches nothing, so a stale list costs memory, never a build.
# Needs valgrind (callgrind, callgrind_control) and python3.
set -euo pipefail
binary=${1:?usage: src/link/startup_order.sh PATH/TO/UNSTRIPPED/sse-broadcast}
script=$(cd "$(dirname "$0")" && pwd)/startup.ld
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkfifo "$work/stdin"
exec {hold}<>"$work/stdin" # a writer that stays: the server never sees the end of input
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/calls" \
  "$binary" --port 0 --bind 127.0.0.1 -q <"$work/stdin" >/dev/null 2>"$work/stderr" {hold}>&- &
server=$!
for _ in $(seq 600); do
  grep -qs "listening on" "$work/stderr" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$work/stderr" || { echo "no 'listening on' line in 60 s" >&2; exit 1; }
sleep 3 # the runtime's threads reach their waits
callgrind_control --dump "$server" >/dev/null 2>&1 # calls.1: the start; counting begins anew
port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/stderr" | head -1)
exec {client}<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /events HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nAccept: text/event-stream\r\n\r\n' "$port" >&"$client"
read -r -t 60 status <&"$client" || { echo "no answer to GET /events" >&2; exit 1; }
sleep 3 # the stream is open and idle
callgrind_control --dump "$server" >/dev/null 2>&1 # calls.2: one idle stream
exec {client}>&-
kill -KILL "$server"
wait "$server" 2>/dev/null || true
python3 - "$(basename "$binary")" "$script" "$work/calls.1" "$work/calls.2" <<'PY'
import re, sys
binary, script, dumps = sys.argv[1], sys.argv[2], sys.argv[3:]
seen = []
for dump in dumps:
    names, objects, current = {}, {}, None
    # callgrind names a function or object in full the first time, then by "(id)" alone.
    for line in open(dump, encoding="utf-8", errors="replace"):
        m = re.match(r"^(c?fn|c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, ident, name = m.groups()
        if kind in ("ob", "cob"):
            if name:
                objects[ident] = name
            if kind == "ob":
                current = objects.get(ident)
            continue
        if name:
            names[ident] = name
        if kind == "fn" and current and current.endswith("/" + binary):
            seen.append(re.sub(r"'\d+$", "", names[ident]))  # "'2": a recursion depth
# "_ZN...17h0123456789abcdefE": the legacy mangling's hash, which changes from build to build.
# Valgrind's own names ("(below main)") are no symbols: left out.
symbols = [name for name in seen if re.fullmatch(r"[A-Za-z0-9_.$]+", name)]
patterns = list(dict.fromkeys(re.sub(r"17h[0-9a-f]{16}E$", "17h*", name) for name in symbols))
with open(script, "w") as out:
    out.write("/* Written by src/link/startup_order.sh; read by build.rs. */\nSECTIONS\n{\n")
    out.write("  .text.start :\n  {\n")
    for pattern in patterns:
        out.write(f"    *(.text.{pattern} .text.unlikely.{pattern})\n")
    out.write("  }\n}\nINSERT BEFORE .text;\n")
print(f"{script}: {len(patterns)} functions")
PY
