#!/usr/bin/env bash
# A drain at scale: N streams on instance A, each of which reconnects to instance B once A ends
# it, after the last retry: A told it (as an EventSource behind a balancer would: A's /readyz is
# 503 by then). A gets SIGTERM with --drain DRAIN. Reports the new streams per second (and the
# peak per 100 ms) that B sees, and the drain's wall time (SIGTERM to A's exit).
#   benches/drain.sh [N=10000] [DRAIN=10s] [BINARY=target/release/sse-broadcast]
# DRAIN=0 is the stop without a drain (every stream ended at once), to compare. Both instances
# tell their streams --retry 1s (spread per stream to 1..1.5 s), so without a drain the retry
# spread alone is what spreads the reconnects. The clients are benches/drain_clients.py
# (asyncio, PARTS=4 processes), which open the first streams 256 at a time each and the
# reconnects as they come. B's side is read from its /stats every 100 ms. Without a drain the
# clients themselves bound the peak (a few processes on a shared machine, not 10,000 browsers):
# it is a floor, not the storm.
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

# PARTS client processes share the streams, so that a storm is not one process's queue.
parts=${PARTS:-4}
for part in $(seq "$parts"); do
  python3 "$here/benches/drain_clients.py" "$((n / parts))" "$url_a" "$url_b" "$work/ready$part" \
    "$work/signalled" --max-time 120 > "$work/report$part.json" &
  clients="$clients $!"
done
for part in $(seq "$parts"); do
  for _ in $(seq 1200); do [ -e "$work/ready$part" ] && break; sleep 0.1; done
  [ -e "$work/ready$part" ] || { echo "the $n streams did not open on A" >&2; exit 1; }
done
open=$(curl -s "${url_a%/events}/stats" | sed -n 's/.*"consumers":\([0-9]*\).*/\1/p')

# B's own count of open streams, every 100 ms: the reconnects as B sees them, whatever the
# clients' process records (it lags when the machine is loaded).
python3 - "${url_b%/events}/stats" "$work/b_samples" <<'PY' &
import json, sys, time, urllib.request
with open(sys.argv[2], "w") as out:
    while True:
        try:
            stats = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))
        except OSError:
            break
        out.write(f"{time.time()} {stats['consumers']}\n")
        out.flush()
        time.sleep(0.1)
PY
sampler=$!
date +%s.%N > "$work/signalled"
start_s=$(cat "$work/signalled")
kill -TERM "$a"
status=0
wait "$a" || status=$?
end_s=$(date +%s.%N)
for pid in $clients; do wait "$pid"; done
kill "$b" 2>/dev/null || true
wait "$sampler" || true
printf 'streams open on A: %s\n--drain: %s\nA exit status: %s\ndrain wall time (SIGTERM to exit): %.2f s\n' \
  "$open" "$drain" "$status" "$(awk -v a="$start_s" -v b="$end_s" 'BEGIN{print b-a}')"
python3 - "$work/b_samples" "$work/signalled" "$work"/report*.json <<'PY'
import json, sys
t0 = float(open(sys.argv[2]).read())
samples = [tuple(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
# Up to the first sample at the most: after it the clients leave (the run is over).
top = max((count for _, count in samples), default=0)
samples = samples[: next((i + 1 for i, (_, c) in enumerate(samples) if c == top), 0)]
# B's open streams at each whole second after the signal (the last sample before it), and the
# largest rise over any 10 consecutive samples (about a second) and any one (about 100 ms).
rises = [b[1] - a[1] for a, b in zip(samples, samples[1:])]
window = [samples[i + 10][1] - samples[i][1] for i in range(len(samples) - 10)]
per_s, k, last = [], 1, 0
for t, count in samples:
    while t - t0 >= k:
        per_s.append(int(last))
        k += 1
    last = count
print(f"B's open streams (its /stats) at each second after SIGTERM: {per_s}")
print(f"B's largest rise: {int(max(window, default=0))} in ~1 s (10 samples), "
      f"{int(max(rises, default=0))} in ~100 ms (1 sample); {len(samples)} samples")
reports = [json.load(open(path)) for path in sys.argv[3:]]
def merged(key):
    lists = [r[key] for r in reports]
    return [sum(l[i] for l in lists if i < len(l)) for i in range(max(map(len, lists)))]
total = lambda key: sum(r[key] for r in reports)
print(f"clients ended on A: {total('ended_on_a')}, reopened on B: {total('opened_on_b')}, "
      f"failed: {total('failed')}")
ends = [t for r in reports for t in r["ends_s"]]
print(f"A's ends as the clients saw them: first {min(ends)} s, last {max(ends)} s after SIGTERM")
print(f"streams A ended per second: {merged('ends_on_a_per_s')}")
print(f"new streams on B per second, as the clients saw them: {merged('opens_on_b_per_s')}; "
      f"peak {max(merged('opens_on_b_per_s'))}/s, {max(merged('opens_on_b_per_100ms'))} in 100 ms")
PY
