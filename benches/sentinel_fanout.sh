#!/usr/bin/env bash
# Fan-out through Sentinel against a direct Redis URL, in one run: a master, a replica and three
# Sentinels (quorum 2) are started once on fixed loopback ports, pinned to CPU 0 beside the
# server; then ../shared/bench/bench.sh measures fan-out (--fanout-clients subscribers, the
# publisher piped into stdin as fast as it is taken, so every event goes to Redis and back
# through Pub/Sub) with --redis redis://MASTER and with --redis redis-sentinel://...#bench, the
# two alternating REPS times (default 3) so that drift in the machine's load hits both alike.
# No change is expected: the Sentinels are asked for the master at start and after a failover,
# never per event. Prints one line per run (bench.sh's medians) and keeps its output in OUTDIR.
# usage: benches/sentinel_fanout.sh PATH/TO/sse-broadcast PATH/TO/bench.sh PATH/TO/sseload OUTDIR
set -u
bin=$1 bench=$2 sseload=$3 out=$4 reps=${REPS:-3} secs=${SECS:-5} clients=${CLIENTS:-1000}
m=17479 r=17480 pids=()
mkdir -p "$out"
cleanup() { kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; }
trap cleanup EXIT

taskset -c 0 redis-server --port $m --bind 127.0.0.1 --save "" --appendonly no --dir "$out" >/dev/null &
pids+=($!)
taskset -c 0 redis-server --port $r --bind 127.0.0.1 --save "" --appendonly no --dir "$out" \
  --replicaof 127.0.0.1 $m >/dev/null &
pids+=($!)
until redis-cli -p $r info replication 2>/dev/null | grep -q master_link_status:up; do sleep 0.05; done
for i in 0 1 2; do
  printf '%s\n' "port $((27479 + i))" "bind 127.0.0.1" "sentinel monitor bench 127.0.0.1 $m 2" \
    "sentinel down-after-milliseconds bench 5000" > "$out/s$i.conf"
  taskset -c 0 redis-server "$out/s$i.conf" --sentinel >/dev/null &
  pids+=($!)
done
until [ "$(redis-cli -p 27479 sentinel get-master-addr-by-name bench 2>/dev/null | tail -1)" = $m ]; do sleep 0.1; done

direct="redis://127.0.0.1:$m"
sentinel="redis-sentinel://127.0.0.1:27479,127.0.0.1:27480,127.0.0.1:27481#bench"
for rep in $(seq 1 "$reps"); do
  for tag in direct sentinel; do
    url=$direct; [ $tag = sentinel ] && url=$sentinel
    redis-cli -p $m flushall >/dev/null # each run starts from empty keys
    "$bench" --only fanout --reps 1 --secs "$secs" --fanout-clients "$clients" --sseload "$sseload" \
      --label "$tag.$rep" --out "$out/$tag.$rep" -- \
      "$bin" --port '{port}' --bind 127.0.0.1 -q --keep-alive 0 --redis "$url" >/dev/null 2>>"$out/bench.err"
    printf '%-11s' "$tag.$rep"
    awk '/published_per_s|delivered_per_s|loss_ratio|gaps|lat_p99|server_cpu_s |cpu_s_per_M/ {
      sub(/^fanout\.[0-9]+\./, "", $1); printf " %s=%s", $1, $2 } END { print "" }' \
      "$out/$tag.$rep/summary.txt"
  done
done
