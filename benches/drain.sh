#!/usr/bin/env bash
# A drain at scale: N streams on instance A, each of which reconnects to instance B once A ends
# it, after the last retry: A told it (as an EventSource behind a balancer would: A's /readyz is
# 503 by then). A gets SIGTERM with --drain DRAIN. Reports the new streams per second (and the
# peak per 100 ms) that B sees, and the drain's wall time (SIGTERM to A's exit).
#   benches/drain.sh [N=10000] [DRAIN=10s] [BINARY=target/release/sse-broadcast]
# DRAIN=0 is the stop without a drain (every stream ended at once), to compare. Both instances
# tell their streams --retry 1s (spread per stream to 1..1.5 s), so without a drain the retry
# spread alone is what spreads the reconnects. The clients are benches/drain_clients.py
# (asyncio, one process), which opens streams 256 at a time.
set -euo pipefail
n=${1:-10000}
drain=${2:-10s}
bin=${3:-target/release/sse-broadcast}
here=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$bin" ] || (cd "$here" && cargo build --release -q)
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
a='' b='' clients=''
trap 'kill $a $b $clients 2>/dev/null || true; rm -rf "$work"' EXIT

# start NAME ARGS...: an instance on a free port; sets $url_NAME and $pid_NAME.
start() {
  local name=$1
  shift
  "$bin" --port 0 -q -i 1h --retry 1s "$@" < /dev/null 2> "$work/$name.err" &
  eval "pid_$name=$!"
  for _ in $(seq 100); do grep -q 'listening on' "$work/$name.err" && break; sleep 0.05; done
  eval "url_$name=\"$(sed -n 's/^listening on //p' "$work/$name.err" | head -1)/events\""
}
start a --drain "$drain"
start b
a=$pid_a b=$pid_b

python3 "$here/benches/drain_clients.py" "$n" "$url_a" "$url_b" "$work/ready" "$work/signalled" \
  --max-time 120 > "$work/report.json" &
clients=$!
for _ in $(seq 1200); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || { echo "the $n streams did not open on A" >&2; exit 1; }
open=$(curl -s "${url_a%/events}/stats" | sed -n 's/.*"consumers":\([0-9]*\).*/\1/p')

date +%s.%N > "$work/signalled"
start_s=$(cat "$work/signalled")
kill -TERM "$a"
status=0
wait "$a" || status=$?
end_s=$(date +%s.%N)
wait "$clients"
printf 'streams open on A: %s\n--drain: %s\nA exit status: %s\ndrain wall time (SIGTERM to exit): %.2f s\n' \
  "$open" "$drain" "$status" "$(awk -v a="$start_s" -v b="$end_s" 'BEGIN{print b-a}')"
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"clients ended on A: {r['ended_on_a']}, reopened on B: {r['opened_on_b']}, failed: {r['failed']}"
      + (f" ({r['first_failure']})" if r['failed'] else ""))
print(f"A's ends: first {r['first_end_s']} s, last {r['last_end_s']} s after SIGTERM")
print(f"peak new streams on B: {r['peak_opens_on_b_per_s']} in one second, "
      f"{r['peak_opens_on_b_per_100ms']} in 100 ms; last at {r['last_open_on_b_s']} s")
print(f"new streams on B per second: {r['opens_on_b_per_s']}")
PY
