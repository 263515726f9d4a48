#!/usr/bin/env bash
# Scale-out through Redis, measured against one instance alone in the same run: fan-out
# (publisher as fast as accepted) and latency (100 events/s) at 1,000 subscribers, spread
# evenly over three instances on one redis-server; the publisher is piped into the first
# instance's stdin. Every server process (the instances and Redis) is pinned to CPU 0, the
# load generator (../shared/bench/sseload) and the publisher to CPU 1. Prints, per run,
# events published, deliveries/s (summed over the instances), p99 per instance, loss, server
# and Redis CPU seconds. REPS=N repeats; SECS sets the publishing time; PERF=1 records a CPU
# profile of the instances and Redis (perf) during the three-instance runs.
# usage: benches/scale_out.sh target/release/sse-broadcast PATH/TO/sseload OUTDIR
set -u
bin=$1 sseload=$2 out=$3 secs=${SECS:-10} clients=1000
mkdir -p "$out"
hz=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$2" | head -1; }

run() { # tag instances(1|3) publisher-args...
  local tag=$1 k=$2; shift 2
  local rport=16500 pids=() i port args rpid="" fifo=$out/$tag.fifo
  rm -f "$out/$tag".*
  if [ "$k" -gt 1 ]; then
    taskset -c 0 redis-server --port $rport --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
    rpid=$!; sleep 0.3
  fi
  mkfifo "$fifo"; exec {hold}<>"$fifo"
  for i in $(seq 1 "$k"); do
    port=$((18500 + i)); args=(--port $port --bind 127.0.0.1 -q --keep-alive 0)
    [ -n "$rpid" ] && args+=(--redis redis://127.0.0.1:$rport)
    if [ "$i" = 1 ]; then taskset -c 0 "$bin" "${args[@]}" --stdin < "$fifo" 2>>"$out/$tag.err" &
    else taskset -c 0 "$bin" "${args[@]}" -i 1h 2>>"$out/$tag.err" & fi
    pids+=($!)
  done
  sleep 0.5
  local subs=()
  for i in $(seq 1 "$k"); do
    taskset -c 1 "$sseload" subscribers --url http://127.0.0.1:$((18500 + i))/events -n $((clients / k + (i <= clients % k ? 1 : 0))) \
      --connect-rate 5000 --duration $((secs * 6 + 60)) --idle-exit 3 --max-time $((secs * 6 + 120)) \
      --expect-file "$out/$tag.pub.json" --ready-file "$out/$tag.ready$i" --out "$out/$tag.sub$i.json" 2>>"$out/$tag.err" &
    subs+=($!)
  done
  for i in $(seq 1 "$k"); do while [ ! -s "$out/$tag.ready$i" ]; do sleep 0.05; done; done
  sleep 1
  local s0 r0=0 s1 r1=0
  s0=$(ticks "${pids[@]}"); [ -n "$rpid" ] && r0=$(ticks $rpid)
  # PERF=1: a CPU profile of the instances and Redis while the publisher runs.
  if [ -n "${PERF:-}" ] && [ -n "$rpid" ]; then
    perf record -q -F 499 -g -o "$out/$tag.perf.data" -p "$(IFS=,; echo "${pids[*]},$rpid")" -- sleep "$secs" 2>/dev/null &
  fi
  timeout $((secs * 3 + 30)) taskset -c 1 "$sseload" publish --duration "$secs" "$@" --report "$out/$tag.pub.json" > "$fifo"
  wait "${subs[@]}"
  s1=$(ticks "${pids[@]}"); [ -n "$rpid" ] && r1=$(ticks $rpid)
  kill "${pids[@]}" $rpid 2>/dev/null; wait "${pids[@]}" $rpid 2>/dev/null
  exec {hold}>&-; rm -f "$fifo"
  local pub dl=0 per=0 p99s="" loss="" i f
  pub=$(jget published "$out/$tag.pub.json")
  for i in $(seq 1 "$k"); do
    f=$out/$tag.sub$i.json
    dl=$((dl + $(jget events_delivered "$f")))
    per=$(awk -v a="$per" -v b="$(jget delivered_per_s "$f")" 'BEGIN{printf "%.0f", a + b}')
    p99s+="$(awk -v v="$(jget lat_p99_us "$f")" 'BEGIN{printf "%.1f", v/1000}') "
    loss+="$(jget loss_ratio "$f") "
  done
  echo "$tag: published $pub ($(jget published_per_s "$out/$tag.pub.json")/s) delivered $dl deliveries/s $per p99_ms [$p99s] loss [$loss] server_cpu_s $(awk -v a=$s0 -v b=$s1 -v hz=$hz 'BEGIN{printf "%.2f",(b-a)/hz}') redis_cpu_s $(awk -v a=$r0 -v b=$r1 -v hz=$hz 'BEGIN{printf "%.2f",(b-a)/hz}') redis_cpu_s_per_M_events $(awk -v a=$r0 -v b=$r1 -v hz=$hz -v n=$pub 'BEGIN{printf "%.1f", (n > 0 ? (b-a)/hz/(n/1e6) : 0)}')"
}
for rep in $(seq 1 "${REPS:-1}"); do
  run "fanout.alone.$rep" 1 --window 16
  run "fanout.redis3.$rep" 3 --window 16
  run "latency.alone.$rep" 1 --rate 100
  run "latency.redis3.$rep" 3 --rate 100
done
