#!/usr/bin/env bash
# What TLS and HTTP/2 cost, measured with h2load (Debian's nghttp2-client) as the one client for
# every protocol, so the figures compare with each other:
#   1. Idle RSS per stream: VmRSS of the server (/proc/PID/status) once every stream is open
#      and SETTLE s have passed quietly, minus its VmRSS with no client, divided by the streams.
#      12 s by default: past jemalloc's 10 s decay, after which the memory the handshakes freed
#      has gone back to the system (its background thread purges it); what is left is held.
#      Shapes: plain HTTP/1.1, HTTP/1.1 over TLS, HTTP/2 over TLS and h2c with one stream per
#      connection (N connections each), and STREAMS_CONNS HTTP/2 connections over TLS carrying
#      STREAMS streams each against the same connections carrying one: the cost of an extra
#      stream on a connection that is already open, its streams opened all at once (h2load) and
#      one at a time, as a browser's tabs open them (benches/h2_one_by_one.js).
#   2. Fan-out: FANOUT_CLIENTS streams (one per connection) over TLS and over plain HTTP/2 (h2c),
#      then HTTP/1.1 over TLS and plain, while `sseload publish --rate 0` feeds stdin as fast as
#      the server takes lines for SECS seconds. Deliveries/s = events published x streams /
#      publishing time (input waits for the slowest stream, so no event is skipped); the bytes
#      h2load counted over the bytes of one event cross-check it. Also the server's CPU
#      nanoseconds per delivery (the cost figure that holds when other work shares the CPUs)
#      and h2load's CPU use (near 100 %: the client, not the server, set the pace). Prints the
#      TLS / plain ratios of both.
# Each figure REPS times with a fresh server: median (min..max). Loopback only; the server is
# pinned to SERVER_CPU and the clients to LOAD_CPU; every client runs under a time limit, and
# every process started here is stopped by its PID on exit.
#   benches/tls_h2_idle.sh [BINARY=target/release/sse-broadcast]
#   env: N=10000 STREAMS_CONNS=100 STREAMS=100 FANOUT_CLIENTS=1000 SECS=10 REPS=3
#        CONNECT_RATE=500 (idle: new connections a second) SETTLE=12 (idle: seconds of quiet
#        before RSS is read) SERVER_CPU=0 LOAD_CPU=1 ONLY=idle,fanout
#        SHAPES=h1,tls-h1,h2c,tls-h2,tls-h2-streams (idle: the shapes measured, in this order;
#        tls-h2-streams is STREAMS_CONNS connections with 1 and with STREAMS streams each,
#        opened all at once by h2load and one at a time by benches/h2_one_by_one.js)
#        SYSCALLS=1 (fan-out: count the server's socket writes, write, writev and sendto, with
#        perf stat, per 1,000 deliveries) or PROFILE=PATH (fan-out: a CPU profile of the server
#        while it publishes, perf record -g into PATH.tlsh1 for TLS HTTP/1.1 and so on)
# Needs h2load, openssl, curl, taskset, node; the publisher is ../shared/bench/sseload (built on first use).
set -euo pipefail
bin=${1:-target/release/sse-broadcast}
n=${N:-10000}
streams_conns=${STREAMS_CONNS:-100}
streams=${STREAMS:-100}
fanout_clients=${FANOUT_CLIENTS:-1000}
secs=${SECS:-10}
reps=${REPS:-3}
scpu=${SERVER_CPU:-0}
lcpu=${LOAD_CPU:-1}
only=${ONLY:-idle,fanout}
connect_rate=${CONNECT_RATE:-500}
settle=${SETTLE:-12}
shapes=${SHAPES:-h1,tls-h1,h2c,tls-h2,tls-h2-streams}
here=$(cd "$(dirname "$0")/.." && pwd)
sseload=${SSELOAD:-/tmp/sseload/release/sseload}
[ -x "$sseload" ] || (cd "$here/../shared/bench/sseload" && cargo build --release -q --target-dir /tmp/sseload)
[ -x "$bin" ] || (cd "$here" && cargo build --release -q)
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
server="" client="" hold=""
stop() { # stop what is running, by PID: the client first, then the server
  local pid
  for pid in $client $server; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  client="" server=""
  if [ -n "$hold" ]; then exec {hold}>&-; hold=""; fi
}
trap 'stop; rm -rf "$work"' EXIT

# A self-signed pair, as docs/security.md makes one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

# start_server tls|plain [ARGS...]: a fresh server on a free loopback port; its stdin is a FIFO
# held open here, so it never sees the end of input. Sets $server and $base (http[s]://ADDR:PORT).
start_server() {
  local mode=$1
  shift
  local tls=()
  [ "$mode" = tls ] && tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  rm -f "$work/in" && mkfifo "$work/in"
  exec {hold}<>"$work/in"
  taskset -c "$scpu" "$bin" --port 0 --bind 127.0.0.1 -q "${tls[@]}" "$@" \
    < "$work/in" 2> "$work/err" {hold}>&- &
  server=$!
  for _ in $(seq 100); do grep -q 'listening on' "$work/err" && break; sleep 0.05; done
  base=$(sed -n 's/^listening on //p' "$work/err" | head -1)
  [ -n "$base" ] || { cat "$work/err" >&2; exit 1; }
}

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$server/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
consumers() { curl -sk --max-time 5 "$base/stats" | sed -n 's/.*"consumers":\([0-9]*\).*/\1/p'; }

# await_consumers COUNT: until the server counts COUNT streams (at most 60 s).
await_consumers() {
  for _ in $(seq 600); do
    [ "$(consumers)" = "$1" ] && return 0
    kill -0 "$client" 2>/dev/null || break
    sleep 0.1
  done
  echo "only $(consumers) of $1 streams opened; h2load said:" >&2
  tail -5 "$work/h2load.out" >&2
  return 1
}

# h2load_bg SECONDS H2LOAD_ARGS...: never-ending /events requests, on LOAD_CPU, stopped after
# SECONDS at the latest.
h2load_bg() {
  local secs=$1
  shift
  timeout -s INT "$secs" taskset -c "$lcpu" h2load -t 1 -H 'Accept: text/event-stream' "$@" \
    > "$work/h2load.out" 2>&1 &
  client=$!
}

# median "v1 v2 ...": prints "median (min..max)"
median() {
  tr ' ' '\n' <<< "$1" | grep . | sort -g | awk '{v[NR]=$1} END {
    m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    printf "%.2f (%.2f..%.2f)", m, v[1], v[NR]}'
}

# idle_rss tls|plain STREAMS CONNECTIONS H2LOAD_ARGS...: sets $result to the RSS growth in KiB
# once the STREAMS streams on CONNECTIONS connections are open.
idle_rss() {
  local mode=$1 expect=$2 conns=$3
  shift 3
  start_server "$mode"
  sleep 1
  local before
  before=$(rss_kib)
  # CONNECT_RATE new connections a second: h2load starting 10,000 TLS handshakes at once
  # finishes fewer than half of them within the server's 10 s handshake timeout.
  if [ "$1" = one-by-one ]; then
    timeout -s INT 150 taskset -c "$lcpu" node "$here/benches/h2_one_by_one.js" "$base" \
      "$conns" $((expect / conns)) > "$work/h2load.out" 2>&1 &
    client=$!
  else
    h2load_bg 150 -r $((conns < connect_rate ? conns : connect_rate)) -c "$conns" -n "$expect" \
      "$@" "$base/events"
  fi
  await_consumers "$expect"
  sleep "$settle"
  result=$(($(rss_kib) - before))
  stop
}

if [[ ,$only, == *,idle,* ]]; then
  echo "== idle RSS per stream (KiB), N=$n, reps=$reps"
  declare -A shape=(
    ["plain HTTP/1.1 ($n conns)"]="plain $n $n --h1"
    ["TLS HTTP/1.1 ($n conns)"]="tls $n $n --h1"
    ["h2c ($n conns x 1 stream)"]="plain $n $n -m 1"
    ["TLS h2 ($n conns x 1 stream)"]="tls $n $n -m 1"
    ["TLS h2 ($streams_conns conns x 1 stream)"]="tls $streams_conns $streams_conns -m 1"
    ["TLS h2 ($streams_conns conns x $streams streams)"]="tls $((streams_conns * streams)) $streams_conns -m $streams"
    ["TLS h2 ($streams_conns conns x $streams streams, one by one)"]="tls $((streams_conns * streams)) $streams_conns one-by-one"
  )
  declare -A named=(
    [h1]="plain HTTP/1.1 ($n conns)" [tls-h1]="TLS HTTP/1.1 ($n conns)" [h2c]="h2c ($n conns x 1 stream)"
    [tls-h2]="TLS h2 ($n conns x 1 stream)"
  )
  names=()
  for key in ${shapes//,/ }; do
    case $key in
      tls-h2-streams) names+=("TLS h2 ($streams_conns conns x 1 stream)"
        "TLS h2 ($streams_conns conns x $streams streams)"
        "TLS h2 ($streams_conns conns x $streams streams, one by one)") ;;
      h1 | tls-h1 | h2c | tls-h2) names+=("${named[$key]}") ;;
      *) echo "SHAPES: unknown shape $key" >&2; exit 2 ;;
    esac
  done
  declare -A grown=()
  for _ in $(seq "$reps"); do
    for name in "${names[@]}"; do
      # shellcheck disable=SC2086 # the shape is a word list on purpose
      echo "  $name" >&2
      idle_rss ${shape[$name]}
      grown[$name]+=" $result"
    done
  done
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086
    set -- ${shape[$name]}
    per=""
    for kib in ${grown[$name]}; do per+=" $(awk -v k="$kib" -v s="$2" 'BEGIN{print k/s}')"; done
    printf '%-40s %s KiB per stream (growth KiB:%s)\n' "$name" "$(median "$per")" "${grown[$name]}"
  done
  if [[ ,$shapes, == *,tls-h2-streams,* ]]; then
    one=${grown["TLS h2 ($streams_conns conns x 1 stream)"]}
    read -ra a <<< "$one"
    for opened in "" ", one by one"; do
      read -ra b <<< "${grown["TLS h2 ($streams_conns conns x $streams streams$opened)"]}"
      extra=""
      for i in "${!a[@]}"; do
        extra+=" $(awk -v x="${a[$i]}" -v y="${b[$i]}" -v d=$((streams_conns * (streams - 1))) 'BEGIN{print (y-x)/d}')"
      done
      printf '%-40s %s KiB\n' "TLS h2: each extra stream${opened:-, all at once}" "$(median "$extra")"
    done
  fi
fi

# fanout tls|plain H2LOAD_ARGS...: sets $result to "deliveries/s received/expected-bytes
# server-CPU-s-per-10^6-deliveries h2load-CPU-%" (the script reports the third in ns per delivery)
fanout() {
  local mode=$1
  shift
  start_server "$mode"
  h2load_bg $((secs + 38)) -D $((secs + 8)) "$@" -c "$fanout_clients" "$base/events"
  await_consumers "$fanout_clients"
  sleep 1
  local h2load_pid
  h2load_pid=$(pgrep -P "$client" -x h2load)
  local s0 c0 t0 t1
  s0=$(cpu_ticks "$server")
  c0=$(cpu_ticks "$h2load_pid")
  t0=$(date +%s.%N)
  local counter=""
  if [ -n "${SYSCALLS:-}" ]; then
    perf stat -x, -e syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendto -p "$server" \
      -o "$work/syscalls" &
    counter=$!
  elif [ -n "${PROFILE:-}" ]; then
    perf record -F 999 -g -p "$server" -o "$PROFILE.${mode}$(printf %s "$*" | tr -dc a-z0-9)" \
      2> /dev/null &
    counter=$!
  fi
  timeout $((secs + 30)) taskset -c "$lcpu" "$sseload" publish --rate 0 --duration "$secs" \
    --report "$work/pub.json" > "$work/in"
  t1=$(date +%s.%N)
  if [ -n "$counter" ]; then
    kill -INT "$counter" && wait "$counter" || true
  fi
  local s1 c1
  s1=$(cpu_ticks "$server")
  c1=$(cpu_ticks "$h2load_pid")
  wait "$client" || true
  client=""
  local published
  published=$(sed -n 's/.*"published":\([0-9]*\).*/\1/p' "$work/pub.json")
  # h2load's "traffic: ... N data": response body bytes. An event with id I is
  # "id: I\ndata: <64-byte line>\n\n", 77 bytes plus the digits of I.
  local data
  data=$(awk '/^traffic:/{for(i=1;i<=NF;i++) if($(i+1) ~ /^data/) print $i}' "$work/h2load.out" | tr -d '()' | head -1)
  result=$(awk -v p="$published" -v c="$fanout_clients" -v t0="$t0" -v t1="$t1" -v ds=$((s1 - s0)) \
      -v dc=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v data="$data" 'BEGIN {
    bytes = 0
    for (d = 1; 10^(d-1) <= p; d++) { hi = (10^d - 1 < p ? 10^d - 1 : p); bytes += (hi - 10^(d-1) + 1) * (77 + d) }
    t = t1 - t0
    printf "%.0f %.4f %.5f %.0f\n", p * c / t, data / (bytes * c), ds / hz / (p * c / 1e6), 100 * dc / hz / t
  }')
  if [ -n "${SYSCALLS:-}" ]; then
    awk -F, -v d="$(awk -v p="$published" -v c="$fanout_clients" 'BEGIN{print p * c}')" \
      '$3 ~ /sys_enter/ {n += $1} END {printf "  socket writes: %d, %.2f per 1,000 deliveries\n", n, 1000 * n / d}' \
      "$work/syscalls" >&2
  fi
  stop
}

if [[ ,$only, == *,fanout,* ]]; then
  echo "== fan-out to $fanout_clients streams, stdin as fast as taken for ${secs}s, reps=$reps"
  declare -A rate=() check=() scpus=() ccpu=()
  kinds=("TLS h2" "h2c" "TLS HTTP/1.1" "plain HTTP/1.1")
  for _ in $(seq "$reps"); do
    for kind in "${kinds[@]}"; do
      case $kind in
        "TLS h2") fanout tls -m 1 ;;
        "h2c") fanout plain -m 1 ;;
        "TLS HTTP/1.1") fanout tls --h1 ;;
        "plain HTTP/1.1") fanout plain --h1 ;;
      esac
      read -r d k s c <<< "$result"
      rate[$kind]+=" $(awk -v d="$d" 'BEGIN{print d/1e6}')" check[$kind]+=" $k" ccpu[$kind]+=" $c"
      scpus[$kind]+=" $(awk -v s="$s" 'BEGIN{print s*1000}')"
    done
  done
  for kind in "${kinds[@]}"; do
    printf '%-16s %s M deliveries/s; received/expected bytes %s; server CPU ns per delivery %s; h2load CPU %%%s\n' \
      "$kind" "$(median "${rate[$kind]}")" "$(median "${check[$kind]}")" "$(median "${scpus[$kind]}")" "${ccpu[$kind]}"
  done
  ratio() { # ratio A B [TABLE]: median of per-rep A/B deliveries/s (or of TABLE's figures)
    local rs="" i
    local -n table=${3:-rate}
    read -ra x <<< "${table[$1]}"
    read -ra y <<< "${table[$2]}"
    for i in "${!x[@]}"; do rs+=" $(awk -v a="${x[$i]}" -v b="${y[$i]}" 'BEGIN{print a/b}')"; done
    median "$rs"
  }
  echo "TLS/plain deliveries/s: h2 $(ratio "TLS h2" h2c), HTTP/1.1 $(ratio "TLS HTTP/1.1" "plain HTTP/1.1")"
  # Where h2load's CPU is near 100 % the client set the pace, and the deliveries/s ratio is the
  # client's: the server's CPU per delivery is then the figure that compares the servers.
  echo "plain/TLS server CPU per delivery: h2 $(ratio h2c "TLS h2" scpus), HTTP/1.1 $(ratio "plain HTTP/1.1" "TLS HTTP/1.1" scpus)"
fi
