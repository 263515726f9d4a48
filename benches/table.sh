#!/usr/bin/env bash
# Every row of docs/performance.md's first table in one session, sse-broadcast beside nginx +
# nchan, each figure by the script named in its row:
#   1. ../shared/bench/bench.sh (idle memory at 1,000/10,000/19,000, fan-out to 1,000, latency
#      at 1,000 and 10,000 subscribers x 100 ev/s), for sse-broadcast and then for nchan;
#   2. stdin lines/s: the same fan-out with one subscriber;
#   3. SIGTERM with 10,000 open streams (benches/shutdown_at_scale.sh), twice;
#   4. idle memory over TLS, HTTP/1.1 and HTTP/2 (benches/tls_h2_idle.sh), and nginx + nchan
#      the same way (benches/nchan_tls_idle.sh);
#   5. fan-out to 1,000 over TLS against plain, HTTP/1.1 and HTTP/2 (benches/tls_h2_idle.sh);
#   6. fan-out to 1,000 with the runtime on one worker and on two (server on both cores, the
#      load generator on core 1).
# Each step's whole output is kept in OUT/NAME.log and its summary printed. About 15 minutes
# on the 2-core VM; run it on a quiet machine, nothing else building.
#   benches/table.sh [BINARY=target/release/sse-broadcast] [OUT=a new temporary directory]
#   env: REPS=3 (bench.sh, the TLS fan-out) SSELOAD=/tmp/sseload/release/sseload
# Needs what the scripts it runs need: nginx with nchan, h2load, openssl, curl, taskset, node.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=$here/../shared/bench
bin=${1:-$here/target/release/sse-broadcast}
out=${2:-$(mktemp -d)}
reps=${REPS:-3}
export SSELOAD=${SSELOAD:-/tmp/sseload/release/sseload}
[ -x "$SSELOAD" ] || (cd "$bench/sseload" && cargo build --release -q --target-dir /tmp/sseload)
[ -x "$bin" ] || (cd "$here" && cargo build --release -q)
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
mkdir -p "$out"
ours=(-- "$bin" --port '{port}' --bind 127.0.0.1 -q)
nchan=(--url http://127.0.0.1:18081/events --post http://127.0.0.1:18081/pub
  -- "$bench/peers/run-nchan.sh" fg --port 18081 --workers 1)

# step NAME SUMMARY-LINES COMMAND...: runs COMMAND, keeps its output, prints its last lines.
step() {
  local name=$1 lines=$2
  shift 2
  echo "== $name ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg)): $*"
  "$@" > "$out/$name.log" 2>&1 || echo "   (exit status $?)"
  tail -n "$lines" "$out/$name.log" | sed 's/^/   /'
}

# bench NAME BENCH-ARGS...: a bench.sh step, its summary kept in OUT/NAME and its rows of the
# table printed.
bench() {
  local name=$1
  shift
  step "$name" 0 ./bench.sh --sseload "$SSELOAD" --out "$out/$name" "$@"
  grep -E 'rss_kib\.0 |kib_per_conn|delivered_per_s|published_per_s|loss_ratio|lat_p50|lat_p99|cpu_s_per_M' \
    "$out/$name/summary.txt" | sed 's/^/   /'
}

cd "$bench"
bench sse-broadcast --reps "$reps" --levels "1000 10000 19000" "${ours[@]}"
bench nchan --reps "$reps" --levels "1000 10000 19000" "${nchan[@]}"
bench stdin-lines --only fanout --fanout-clients 1 --reps 3 --secs 5 "${ours[@]}"
cd "$here"
step sigterm-1 6 benches/shutdown_at_scale.sh 10000 "$bin"
step sigterm-2 6 benches/shutdown_at_scale.sh 10000 "$bin"
step tls-idle 8 env N=5000 REPS=1 ONLY=idle SHAPES=h1,tls-h1,h2c,tls-h2 \
  benches/tls_h2_idle.sh "$bin"
step nchan-tls-idle 8 env N=5000 REPS=1 benches/nchan_tls_idle.sh
step tls-fanout 8 env REPS="$reps" SECS=5 ONLY=fanout benches/tls_h2_idle.sh "$bin"
cd "$bench"
for run in 1 2; do
  for workers in 1 2; do
    TOKIO_WORKER_THREADS=$workers bench "workers-$workers-run-$run" --only fanout --reps 1 \
      --secs 5 --server-cpu 0,1 --load-cpu 1 "${ours[@]}"
  done
done
echo "== done; every output is in $out"
