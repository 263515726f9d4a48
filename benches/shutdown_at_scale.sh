#!/usr/bin/env bash
# Shutdown at scale: N idle streams open, then SIGTERM; reports how long the process took to
# exit, its exit status, and whether every client saw its stream end.
#   benches/shutdown_at_scale.sh [N=10000] [BINARY=target/release/sse-broadcast]
# Uses the load generator from ../shared/bench/sseload (built on first use).
set -euo pipefail
n=${1:-10000}
bin=${2:-target/release/sse-broadcast}
here=$(cd "$(dirname "$0")/.." && pwd)
sseload_dir=$here/../shared/bench/sseload
sseload=${SSELOAD:-/tmp/sseload/release/sseload}
[ -x "$sseload" ] || (cd "$sseload_dir" && cargo build --release -q --target-dir /tmp/sseload)
[ -x "$bin" ] || (cd "$here" && cargo build --release -q)
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" --port 0 -q < /dev/null 2> "$work/err" &
server=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/err" && break; sleep 0.05; done
url="$(sed -n 's/^listening on //p' "$work/err" | head -1)/events"

"$sseload" subscribers --url "$url" -n "$n" --ready-file "$work/ready" --max-time 120 \
  > "$work/sub.json" 2>/dev/null &
load=$!
for _ in $(seq 600); do [ -e "$work/ready" ] && break; sleep 0.1; done
sleep 1
open=$(curl -s "${url%/events}/stats" | sed -n 's/.*"consumers":\([0-9]*\).*/\1/p')

start=$(date +%s.%N)
kill -TERM "$server"
status=0
wait "$server" || status=$?
end=$(date +%s.%N)
wait "$load" || true
closed=$(sed -n 's/.*"disconnected":\([0-9]*\).*/\1/p' "$work/sub.json")
reason=$(sed -n 's/.*"end_reason":"\([^"]*\)".*/\1/p' "$work/sub.json")
printf 'streams open: %s\nexit status: %s\nexit after SIGTERM: %.3f s\nclients that saw their stream end: %s (%s)\n' \
  "$open" "$status" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" "$closed" "$reason"
