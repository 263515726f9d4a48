#!/usr/bin/env bash
# Redis Cluster against one plain redis-server, in the same run (the machine is shared: the
# ratio within one run is the figure, not the absolute rates). Needs redis-server, redis-cli,
# curl, python3, taskset. Every Redis process and instance on CPU 0, the load on CPU 1.
#   benches/cluster.sh [BINARY=target/release/sse-broadcast]
# 1. Publishing: one instance takes POSTs of one small event each from 64 keep-alive
#    connections going round 1,000 channels for SECS (10) seconds (benches/cluster_load.py),
#    on one redis-server, then on a cluster of 3 masters and 3 replicas.
# 2. Fan-out: three instances, READERS (999) streams spread over them, EVENTS (20,000) lines
#    piped into the first one's stdin once every stream is open; deliveries/s summed over the
#    readers from the first delivery to the last, on one redis-server, then on the cluster.
# 3. Failover: a fresh cluster per run (cluster-node-timeout 1000), one instance, a reader of a
#    channel (curl -N, each line stamped) and a POST to it every 20 ms; its master is `kill -9`ed;
#    the time to the first event published after the kill reaching the reader; median of REPS (5).
set -u
bin=${1:-target/release/sse-broadcast}
here=$(cd "$(dirname "$0")" && pwd)
load="python3 $here/cluster_load.py"
secs=${SECS:-10} readers=${READERS:-999} events=${EVENTS:-20000} reps=${REPS:-5}
work=$(mktemp -d)
pids=()
stop_all() { kill -9 "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=(); }
trap 'stop_all; rm -rf "$work"' EXIT
now() { date +%s.%N; }

redis_one() { # PORT
  taskset -c 0 redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" > /dev/null & pids+=($!)
  until redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done
}

declare -A node_pid
cluster_start() { # first port of six; buses at +100
  local base=$1 i port dir=$work/cluster.$1
  rm -rf "$dir"; mkdir -p "$dir"
  for i in 0 1 2 3 4 5; do
    port=$((base + i))
    taskset -c 0 redis-server --port $port --cluster-port $((port + 100)) --bind 127.0.0.1 \
      --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 1000 \
      --save "" --appendonly no --dir "$dir" > /dev/null & pids+=($!)
    node_pid[$port]=$!
  done
  for i in 0 1 2 3 4 5; do until redis-cli -p $((base + i)) ping 2>/dev/null | grep -q PONG; do sleep 0.05; done; done
  redis-cli --cluster create $(for i in 0 1 2 3 4 5; do printf '127.0.0.1:%d ' $((base + i)); done) \
    --cluster-replicas 1 --cluster-yes > /dev/null
  for i in 0 1 2 3 4 5; do
    until redis-cli -p $((base + i)) cluster info | grep -q cluster_state:ok &&
      { redis-cli -p $((base + i)) info replication | grep -qE 'role:master|master_link_status:up'; }; do sleep 0.1; done
  done
}

instance() { # PORT REDIS-URL EXTRA... (stdin from $input, else /dev/null; stderr in $work/err.PORT)
  local port=$1 url=$2; shift 2
  # Named explicitly: a job started with & in a script reads /dev/null otherwise.
  taskset -c 0 "$bin" --port "$port" --bind 127.0.0.1 -q --keep-alive 0 --redis "$url" \
    --publish-token t "$@" < "${input:-/dev/null}" 2> "$work/err.$port" & pids+=($!)
  until curl -s -o /dev/null "http://127.0.0.1:$port/stats"; do sleep 0.05; done
}

publishing() { # TAG URL
  instance 18701 "$2" -i 1h
  printf '%-32s ' "publish to 1,000 channels, $1:"
  taskset -c 1 $load post 18701 t 1000 "$secs" 64
  stop_all
}

fanout() { # TAG URL
  local fifo=$work/fifo.$1
  mkfifo "$fifo"; exec {hold}<>"$fifo"
  input=$fifo instance 18701 "$2" --stdin
  instance 18702 "$2" -i 1h
  instance 18703 "$2" -i 1h
  local third=$((readers / 3))
  coproc READ { taskset -c 1 $load read "$events" 18701:$third 18702:$third 18703:$((readers - 2 * third)); }
  local line; read -r line <&"${READ[0]}" # ready
  seq -f '%.0f' 1 "$events" >&$hold
  read -r line <&"${READ[0]}"
  printf '%-32s %s\n' "fan-out to $readers readers, $1:" "$line"
  exec {hold}>&-; rm -f "$fifo"
  stop_all
}

failover() { # REP; prints seconds from the kill to the first event after it
  local dir=$work/failover.$1 base=17611
  mkdir -p "$dir"
  cluster_start $base
  instance 18711 "redis-cluster://127.0.0.1:$base,127.0.0.1:$((base + 1))" -i 1h
  local slot master
  slot=$(redis-cli -p $base cluster keyslot 'sse-broadcast:{f}:seq')
  master=$(redis-cli -p $base cluster nodes | awk -v s="$slot" '$3 ~ /master/ {
    for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (n == 1) r[2] = r[1]
      if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) { split($2, a, "[:@]"); print a[2] } } }')
  mkfifo "$dir/stream"
  curl -sN http://127.0.0.1:18711/events/f > "$dir/stream" & pids+=($!)
  while IFS= read -r line; do
    case $line in data:*) echo "$(now) ${line#data: }";; esac
  done < "$dir/stream" > "$dir/received" & pids+=($!)
  ( n=0; while :; do n=$((n + 1))
      echo "$n $(now)" >> "$dir/published" # when its POST starts
      curl -s -o /dev/null -H 'Authorization: Bearer t' --data "e$n" http://127.0.0.1:18711/events/f
      sleep 0.02; done ) & pids+=($!)
  sleep 2
  local killed before first=""
  kill -9 "${node_pid[$master]}"; killed=$(now)
  sleep 0.2
  before=$(awk -v k="$killed" '$2 < k { n = $1 } END { print n }' "$dir/published")
  for _ in $(seq 1 600); do
    first=$(awk -v n="$before" '{ if (substr($2, 2) + 0 > n + 0) { print $1; exit } }' "$dir/received")
    [ -n "$first" ] && break
    sleep 0.05
  done
  stop_all
  if [ -z "$first" ]; then echo "run $1: no event after the kill within 30 s" >&2; return; fi
  awk -v a="$killed" -v b="$first" 'BEGIN { printf "%.2f\n", b - a }'
}

redis_one 17600
cluster_start 17601
single=redis://127.0.0.1:17600
cluster="redis-cluster://127.0.0.1:17601,127.0.0.1:17602,127.0.0.1:17603"
keep=("${pids[@]}")
for what in publishing fanout; do
  pids=()
  $what "one redis-server" "$single"
  $what "cluster of 3 masters" "$cluster"
done
pids=("${keep[@]}"); stop_all

for rep in $(seq 1 "$reps"); do
  t=$(failover "$rep")
  [ -n "$t" ] && echo "failover run $rep: ${t} s from kill -9 of the master to the next event" &&
    echo "$t" >> "$work/times"
done
sort -n "$work/times" | awk '{ t[NR] = $1 } END { printf "failover: median of %d: %.2f s\n", NR, t[int((NR + 1) / 2)] }'
