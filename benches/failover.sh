#!/usr/bin/env bash
# Failover time through Sentinel: from the master's `kill -9` to the first event published after
# it reaching a reader, median of REPS (default 5) runs. Each run starts a master, a replica and
# three Sentinels (quorum 2, down-after-milliseconds DOWN_MS, default 1000) on fixed loopback
# ports, one instance with --redis redis-sentinel://...#bench, a reader (curl -N, each line
# stamped on arrival) and a publisher POSTing one event every 20 ms; then kills the master.
# Prints each run's figure and the median; most of it is the Sentinels' detection and election.
# usage: benches/failover.sh PATH/TO/sse-broadcast OUTDIR
set -u
bin=$1 out=$2 reps=${REPS:-5} down=${DOWN_MS:-1000}
mkdir -p "$out"
now() { date +%s.%N; }

run() { # rep
  local rep=$1 dir=$out/run$1 m=17379 r=17380 port=18600 pids=() i
  rm -rf "$dir"; mkdir -p "$dir"
  redis-server --port $m --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null & local master=$!
  redis-server --port $r --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --replicaof 127.0.0.1 $m >/dev/null &
  pids+=($!)
  until redis-cli -p $r info replication | grep -q master_link_status:up; do sleep 0.05; done
  for i in 0 1 2; do
    printf '%s\n' "port $((27379 + i))" "bind 127.0.0.1" "sentinel monitor bench 127.0.0.1 $m 2" \
      "sentinel down-after-milliseconds bench $down" "sentinel failover-timeout bench 10000" > "$dir/s$i.conf"
    redis-server "$dir/s$i.conf" --sentinel >/dev/null & pids+=($!)
  done
  # Every Sentinel knows the replica and the two others before the master dies.
  for i in 0 1 2; do
    until [ "$(redis-cli -p $((27379 + i)) sentinel replicas bench | grep -c "^$r$")" = 1 ] &&
          [ "$(redis-cli -p $((27379 + i)) sentinel sentinels bench | grep -cE '^(27379|27380|27381)$')" = 2 ]; do sleep 0.1; done
  done
  "$bin" --port $port --bind 127.0.0.1 --publish-token t -q \
    --redis "redis-sentinel://127.0.0.1:27379,127.0.0.1:27380,127.0.0.1:27381#bench" 2>"$dir/err" & pids+=($!)
  until curl -s -o /dev/null http://127.0.0.1:$port/stats; do sleep 0.05; done
  mkfifo "$dir/stream"
  curl -sN http://127.0.0.1:$port/events > "$dir/stream" & local reader=$!
  while IFS= read -r line; do
    case $line in data:*) echo "$(now) ${line#data: }";; esac
  done < "$dir/stream" > "$dir/received" & local stamper=$!
  ( n=0; while :; do n=$((n + 1))
      echo "$n $(now)" >> "$dir/published" # when its POST starts
      curl -s -o /dev/null -H 'Authorization: Bearer t' --data "e$n" http://127.0.0.1:$port/events
      sleep 0.02; done ) & local publisher=$!
  sleep 2
  local before killed
  kill -9 $master; killed=$(now)
  sleep 0.2
  # The last event whose POST started before the kill; any later one was published after it.
  before=$(awk -v k="$killed" '$2 < k { n = $1 } END { print n }' "$dir/published")
  # The first event published after the kill: a number above the last one posted before it.
  local first=""
  for _ in $(seq 1 600); do
    first=$(awk -v n="$before" '{ if (substr($2, 2) + 0 > n + 0) { print $1; exit } }' "$dir/received")
    [ -n "$first" ] && break
    sleep 0.05
  done
  kill $publisher $reader "${pids[@]}" 2>/dev/null
  wait $publisher $reader $stamper "${pids[@]}" 2>/dev/null
  if [ -z "$first" ]; then echo "run $rep: no event after the kill within 30 s" >&2; return; fi
  awk -v a="$killed" -v b="$first" 'BEGIN { printf "%.2f\n", b - a }'
}

for rep in $(seq 1 "$reps"); do
  t=$(run "$rep")
  [ -n "$t" ] && echo "run $rep: ${t} s from kill -9 to the first event after it" && echo "$t" >> "$out/times"
done
sort -n "$out/times" | awk '{ t[NR] = $1 } END { printf "median of %d: %.2f s\n", NR, t[int((NR + 1) / 2)] }'
rm -f "$out/times"
