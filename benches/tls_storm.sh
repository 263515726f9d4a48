#!/usr/bin/env bash
# A reconnect storm over TLS: CLIENTS (10,000) h2load clients open their connection at once and
# each asks for one never-ending /events stream, against sse-broadcast and against nginx + nchan
# (benches/nchan_tls.conf) serving the same certificate, each pinned to one core (SERVER_CPU),
# h2load on another (LOAD_CPU). Reported per server and protocol (HTTP/1.1 and HTTP/2 over TLS):
# how long until every client has its stream (the server's own count: /stats `consumers`,
# nchan's stub status `subscribers`), the handshakes per second that makes, and how many
# streams were still missing at the time limit. Loopback only; every client runs under a time limit (LIMIT s) and
# every process started here is stopped by its PID on exit.
#   benches/tls_storm.sh [BINARY=target/release/sse-broadcast]
#   env: CLIENTS=10000 LIMIT=120 SERVER_CPU=0 LOAD_CPU=1 PEER=nchan|none
set -euo pipefail
bin=${1:-target/release/sse-broadcast}
clients=${CLIENTS:-10000}
limit=${LIMIT:-120}
scpu=${SERVER_CPU:-0}
lcpu=${LOAD_CPU:-1}
peer=${PEER:-nchan}
here=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$bin" ] || (cd "$here" && cargo build --release -q)
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

# The server's own count of open streams.
count_ours() { curl -sk "$base/stats" | sed -n 's/^{"consumers":\([0-9]*\).*/\1/p'; }
count_nchan() { curl -sk "$base/nchan_status" | sed -n 's/^subscribers: *\([0-9]*\).*/\1/p'; }

# storm NAME COUNTER H2LOAD_FLAGS...: prints one line of figures.
storm() {
  local name=$1 counter=$2
  shift 2
  local start now count=0 elapsed
  start=$(date +%s.%N)
  timeout -s INT "$limit" taskset -c "$lcpu" h2load -t 1 -c "$clients" -n "$clients" \
    -H 'Accept: text/event-stream' "$@" "$base/events" > "$work/h2load.out" 2>&1 &
  local load=$!
  pids+=("$load")
  while :; do
    count=$($counter || echo 0)
    now=$(date +%s.%N)
    [ "${count:-0}" -ge "$clients" ] && break
    if awk -v s="$start" -v n="$now" -v l="$limit" 'BEGIN { exit !(n - s > l) }'; then break; fi
    sleep 0.2
  done
  elapsed=$(awk -v s="$start" -v n="$now" 'BEGIN { printf "%.1f", n - s }')
  kill -INT "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  printf '%-28s %6s of %s streams in %6s s  %7s handshakes/s\n' \
    "$name" "${count:-0}" "$clients" "$elapsed" \
    "$(awk -v c="${count:-0}" -v e="$elapsed" 'BEGIN { printf "%.0f", c / e }')"
}

start_ours() {
  taskset -c "$scpu" "$bin" --port 0 --bind 127.0.0.1 -q --tls-cert "$work/cert.pem" \
    --tls-key "$work/key.pem" < /dev/null 2> "$work/err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q 'listening on' "$work/err" && break; sleep 0.05; done
  base=$(sed -n 's/^listening on //p' "$work/err" | head -1)
}

start_nchan() {
  local port=18443 prefix="$work/nchan"
  mkdir -p "$prefix/logs" "$prefix/tmp"
  sed -e "s#CERT#$work/cert.pem#; s#KEY#$work/key.pem#; s#PORT#$port#" \
    "$here/benches/nchan_tls.conf" > "$prefix/nginx.conf"
  taskset -c "$scpu" nginx -p "$prefix/" -c "$prefix/nginx.conf" -g 'daemon off;' &
  pids+=($!)
  base=https://127.0.0.1:$port
  for _ in $(seq 100); do curl -sk "$base/nchan_status" > /dev/null && break; sleep 0.05; done
}

for protocol in ${PROTOCOLS:-h1 h2}; do
  flags=()
  [ "$protocol" = h1 ] && flags=(--h1)
  start_ours
  storm "sse-broadcast TLS $protocol" count_ours "${flags[@]}"
  stop_all
  if [ "$peer" = nchan ]; then
    start_nchan
    storm "nginx+nchan TLS $protocol" count_nchan "${flags[@]}"
    stop_all
  fi
done
