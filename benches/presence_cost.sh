#!/usr/bin/env bash
# The cost of --presence: idle memory per stream (1,000 streams) and fan-out to 1,000 streams,
# against the same build without it, in one run. Uses ../shared/bench/bench.sh and its sseload
# (the benchmark the performance page uses); the rounds alternate the configurations, so a
# shared machine's load weighs on each alike, and the figures that count are the ratios within
# this run. The load average is printed before and after.
#
#   benches/presence_cost.sh [BINARY=target/release/sse-broadcast] [ROUNDS=3] [SECS=5]
#
# Configurations (every one with the same --jwt-secret, so the only difference is --presence):
#   off        no --presence; each stream carries the same token
#   on         --presence; each stream carries the same token (sub "bench"): one user, one
#              join, so fan-out measures what presence costs per event and memory per stream
#   anonymous  --presence, the default channel --public and no token: each stream is a reader
#              of its own, so 1,000 joins go out while the streams connect (memory only: sseload
#              would count those joins as deliveries and start its fan-out clock on them)
# sseload's deliveries/s runs from a stream's first event to the last one's: with --presence
# the first stream's own join, read while the others connect, starts that clock early and
# lowers the figure without any event going slower. So the fan-out compared is the publisher's
# rate times the streams (every event reached every stream: the loss is printed), over the
# publisher's own window, and the server's CPU per delivery.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/sse-broadcast}")
ROUNDS=${2:-3}
SECS=${3:-5}
BENCH=${BENCH:-../shared/bench/bench.sh}
SSELOAD=${SSELOAD:-}
SECRET='a benchmark secret of 32 bytes or more'
OUT=$(mktemp -d /tmp/presence_cost.XXXXXX)

# An HS256 token for sub "bench" that may read every channel, for an hour.
TOKEN=$(SECRET="$SECRET" python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=")
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = {"exp": int(time.time()) + 3600, "sub": "bench", "sse_broadcast": {"subscribe": ["*"]}}
body = b64(json.dumps(claims).encode())
signature = hmac.new(os.environ["SECRET"].encode(), head + b"." + body, hashlib.sha256).digest()
print((head + b"." + body + b"." + b64(signature)).decode())
PY
)

sseload=()
[ -n "$SSELOAD" ] && sseload=(--sseload "$SSELOAD")
server=("$BIN" --port '{port}' --bind 127.0.0.1 -q --jwt-secret "$SECRET")

run() { # NAME ROUND ONLY [bench.sh options...] -- [server flags...]
  local name=$1 round=$2 only=$3
  shift 3
  local options=()
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  "$BENCH" --reps 1 --secs "$SECS" --levels 1000 --fanout-clients 1000 --only "$only" \
    --label "$name" --out "$OUT/$name.$round" "${sseload[@]}" "${options[@]}" \
    -- "${server[@]}" "$@" > "$OUT/$name.$round.log" 2>&1 \
    || { echo "bench.sh failed for $name (round $round): $OUT/$name.$round.log" >&2; exit 1; }
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  run off "$round" mem,fanout --sub-header "Authorization: Bearer $TOKEN" --
  run on "$round" mem,fanout --sub-header "Authorization: Bearer $TOKEN" -- --presence
  run anonymous "$round" mem -- --presence --public default
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])

def figures(name, key):
    values = []
    for round in range(1, rounds + 1):
        with open(f"{out}/{name}.{round}/summary.json") as summary:
            value = json.load(summary).get(key)
        if value is not None:
            values.append(float(value))
    return values

def show(label, name, key):
    values = figures(name, key)
    median = statistics.median(values) if values else float("nan")
    print(f"{label:<58} {median:>12.2f}   ({', '.join(f'{v:.2f}' for v in values)})")
    return median

kib = "mem.kib_per_conn.1000"
fan = "fanout.1000.delivered_per_s"
print(f"rounds: {rounds}; raw results in {out}")
off_kib = show("idle KiB per stream, without --presence", "off", kib)
on_kib = show("idle KiB per stream, --presence (one user)", "on", kib)
anon_kib = show("idle KiB per stream, --presence (anonymous)", "anonymous", kib)
show("sseload deliveries/s (clock from first event), without", "off", fan)
show("sseload deliveries/s (clock from first event), --presence", "on", fan)
off_fan = 1000 * show("published events/s to 1,000, without", "off", "fanout.1000.published_per_s")
on_fan = 1000 * show("published events/s to 1,000, --presence", "on", "fanout.1000.published_per_s")
show("fan-out loss ratio, without", "off", "fanout.1000.loss_ratio")
show("fan-out loss ratio, --presence", "on", "fanout.1000.loss_ratio")
show("server CPU s per 10^6 deliveries, without", "off", "fanout.1000.cpu_s_per_M")
show("server CPU s per 10^6 deliveries, --presence", "on", "fanout.1000.cpu_s_per_M")
print(f"ratio idle KiB per stream, --presence / without: {on_kib / off_kib:.3f} (one user), "
      f"{anon_kib / off_kib:.3f} (anonymous)")
print(f"fan-out deliveries/s (published/s x 1,000): {off_fan:.0f} without, {on_fan:.0f} with")
print(f"ratio fan-out deliveries/s, --presence / without: {on_fan / off_fan:.3f}")
PY
