#!/usr/bin/env bash
# How fast `sse-broadcast listen -o data` prints a stream, beside `curl -N URL | grep '^data:'`
# on the same stream, each reader pinned to one core (taskset) and the server to the other.
#   benches/listen_rate.sh [EVENTS=1000000] [BINARY=target/release/sse-broadcast]
# The server takes N small lines from stdin once its one reader is connected (--wait-clients 1)
# and exits when they are delivered (--exit-on-eof); input waits for the reader (backpressure),
# so the time from connect to the last line is the reader's own rate. Then: listen's RSS while
# it follows 16 channels on one stream (idle, after 2 s).
set -euo pipefail
n=${1:-1000000}
bin=${2:-target/release/sse-broadcast}
here=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$bin" ] || (cd "$here" && cargo build --release -q)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
seq -f 'event %.0f' 1 "$n" > "$work/lines"

# Starts a server for one reader; prints its URL.
serve() {
    taskset -c 0 "$bin" --port 0 -q --stdin --wait-clients 1 --exit-on-eof --history 0 \
        < "$work/lines" > /dev/null 2> "$work/err" &
    for _ in $(seq 200); do grep -q 'listening on' "$work/err" && break; sleep 0.05; done
    sed -n 's/^listening on //p' "$work/err" | head -1
}

# Runs READER (a shell pipeline reading $url) and prints events/s from its count of lines.
rate() {
    local name=$1 reader=$2
    local url
    url="$(serve)/events"
    local start end count
    start=$(date +%s.%N)
    count=$(url=$url taskset -c 1 bash -c "$reader" | wc -l)
    end=$(date +%s.%N)
    wait
    awk -v name="$name" -v c="$count" -v a="$start" -v b="$end" \
        'BEGIN { printf "%-28s %9d lines in %6.2f s: %10.0f events/s\n", name, c, b - a, c / (b - a) }'
}

rate "listen -o data" "'$bin' listen -q --no-reconnect -o data \"\$url\""
rate "curl -N | grep '^data:'" "curl -sN \"\$url\" | grep '^data:'"
rate "listen -o data" "'$bin' listen -q --no-reconnect -o data \"\$url\""
rate "curl -N | grep '^data:'" "curl -sN \"\$url\" | grep '^data:'"

# RSS of a listener following 16 channels on one stream.
taskset -c 0 "$bin" --port 0 -q -i 1h < /dev/null > /dev/null 2> "$work/err2" &
for _ in $(seq 200); do grep -q 'listening on' "$work/err2" && break; sleep 0.05; done
base=$(sed -n 's/^listening on //p' "$work/err2" | head -1)
channels=$(seq -s, -f 'c%.0f' 1 16)
"$bin" listen -q "$base/events/$channels" > /dev/null &
listener=$!
sleep 2
printf 'listen following 16 channels on one stream: RSS %s KiB\n' \
    "$(awk '/VmRSS/ { print $2 }' "/proc/$listener/status")"
