#!/usr/bin/env bash
# Idle RSS per stream of nginx + nchan over TLS (benches/nchan_tls.conf: one worker, HTTP/2 and
# HTTP/1.1 by ALPN, a fresh self-signed certificate), measured as benches/tls_h2_idle.sh
# measures sse-broadcast and with the same client, h2load: VmRSS summed over nginx's master
# and worker once every stream is open (nchan's own count, `nchan_stub_status`) and SETTLE s
# have passed (as in benches/tls_h2_idle.sh), minus the same with no client, divided by the streams. Shapes: HTTP/1.1 over TLS (N
# connections), HTTP/2 with one stream per connection (N), and STREAMS_CONNS connections
# carrying STREAMS streams each against the same connections carrying one. Median of REPS, a
# fresh nginx each time. Loopback only; nginx pinned to SERVER_CPU, h2load to LOAD_CPU; every
# process started here is stopped by its PID on exit.
#   benches/nchan_tls_idle.sh
#   env: N=10000 STREAMS_CONNS=100 STREAMS=100 REPS=3 CONNECT_RATE=500 SERVER_CPU=0 LOAD_CPU=1
#        SETTLE=12
set -euo pipefail
n=${N:-10000}
streams_conns=${STREAMS_CONNS:-100}
streams=${STREAMS:-100}
reps=${REPS:-3}
scpu=${SERVER_CPU:-0}
lcpu=${LOAD_CPU:-1}
connect_rate=${CONNECT_RATE:-500}
settle=${SETTLE:-12}
port=${PORT:-18443}
here=$(cd "$(dirname "$0")/.." && pwd)
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
server="" client=""
stop() {
  local pid
  for pid in $client $server; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  client="" server=""
}
trap 'stop; rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
base=https://127.0.0.1:$port

start_nchan() {
  local prefix="$work/nchan"
  rm -rf "$prefix" && mkdir -p "$prefix/logs" "$prefix/tmp"
  sed -e "s#CERT#$work/cert.pem#; s#KEY#$work/key.pem#; s#PORT#$port#" \
    "$here/benches/nchan_tls.conf" > "$prefix/nginx.conf"
  taskset -c "$scpu" nginx -p "$prefix/" -c "$prefix/nginx.conf" -g 'daemon off;' &
  server=$!
  for _ in $(seq 100); do curl -sk "$base/nchan_status" > /dev/null && return 0; sleep 0.05; done
  echo "nginx did not start" >&2
  exit 1
}
# VmRSS of nginx's master and its workers, KiB.
rss_kib() {
  local total=0 pid
  for pid in $server $(pgrep -P "$server"); do
    total=$((total + $(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")))
  done
  echo "$total"
}
subscribers() { curl -sk --max-time 5 "$base/nchan_status" | sed -n 's/^subscribers: *\([0-9]*\).*/\1/p'; }

# idle_rss STREAMS CONNECTIONS H2LOAD_ARGS...: sets $result to the RSS growth in KiB.
idle_rss() {
  local expect=$1 conns=$2
  shift 2
  start_nchan
  sleep 1
  local before
  before=$(rss_kib)
  timeout -s INT 150 taskset -c "$lcpu" h2load -t 1 -H 'Accept: text/event-stream' \
    -r $((conns < connect_rate ? conns : connect_rate)) -c "$conns" -n "$expect" "$@" \
    "$base/events" > "$work/h2load.out" 2>&1 &
  client=$!
  for _ in $(seq 600); do
    [ "$(subscribers)" = "$expect" ] && break
    sleep 0.1
  done
  [ "$(subscribers)" = "$expect" ] || { echo "only $(subscribers) of $expect" >&2; tail -5 "$work/h2load.out" >&2; }
  sleep "$settle"
  result=$(($(rss_kib) - before))
  stop
}

median() {
  tr ' ' '\n' <<< "$1" | grep . | sort -g | awk '{v[NR]=$1} END {
    m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    printf "%.2f (%.2f..%.2f)", m, v[1], v[NR]}'
}

echo "== nginx+nchan over TLS: idle RSS per stream (KiB), N=$n, reps=$reps"
declare -A shape=(
  ["TLS HTTP/1.1 ($n conns)"]="$n $n --h1"
  ["TLS h2 ($n conns x 1 stream)"]="$n $n -m 1"
  ["TLS h2 ($streams_conns conns x 1 stream)"]="$streams_conns $streams_conns -m 1"
  ["TLS h2 ($streams_conns conns x $streams streams)"]="$((streams_conns * streams)) $streams_conns -m $streams"
)
names=("TLS HTTP/1.1 ($n conns)" "TLS h2 ($n conns x 1 stream)"
  "TLS h2 ($streams_conns conns x 1 stream)" "TLS h2 ($streams_conns conns x $streams streams)")
declare -A grown=()
for _ in $(seq "$reps"); do
  for name in "${names[@]}"; do
    echo "  $name" >&2
    # shellcheck disable=SC2086 # the shape is a word list on purpose
    idle_rss ${shape[$name]}
    grown[$name]+=" $result"
  done
done
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  set -- ${shape[$name]}
  per=""
  for kib in ${grown[$name]}; do per+=" $(awk -v k="$kib" -v s="$1" 'BEGIN{print k/s}')"; done
  printf '%-40s %s KiB per stream (growth KiB:%s)\n' "$name" "$(median "$per")" "${grown[$name]}"
done
read -ra a <<< "${grown["TLS h2 ($streams_conns conns x 1 stream)"]}"
read -ra b <<< "${grown["TLS h2 ($streams_conns conns x $streams streams)"]}"
extra=""
for i in "${!a[@]}"; do
  extra+=" $(awk -v x="${a[$i]}" -v y="${b[$i]}" -v d=$((streams_conns * (streams - 1))) 'BEGIN{print (y-x)/d}')"
done
printf '%-40s %s KiB\n' "TLS h2: each extra stream on a connection" "$(median "$extra")"
