#!/usr/bin/env bash
# ./jgears bench-cluster [keys] [base-port]: the scaling row. For one Redis without cluster mode (the
# reference) and local clusters of 1, 2 and 3 masters (./jgears cluster start), a jgears beside each:
# - batch: `keys` string keys spread over the shards by slot (default 1000000), and
#   RG.PYEXECUTE "GB().count().run('bench:*')" on the first jgears (every shard reads its own keys);
#   warm-up runs over a ninth of the keys until they stop getting faster (every jgears' JIT compiles the
#   read path), then the best and median of RUNS;
# - key events: one registration, GB('KeysReader').foreach(execute INCR of a counter beside the key),
#   sent to the first jgears (it installs on every shard), then EVENTS SETs pipelined straight into the
#   masters (redis-cli --pipe to each, all at once), timed until the counters add up to every event;
#   warm-up rounds of EVENTS/5 first, until they stop getting faster.
# Prints one markdown row per size and writes docs/cluster-scaling.md (OUT=file: that file, with no title;
# ./jgears bench does this). Not part of the tests. SIZES="single 1 2 3", WARM, RUNS and EVENTS override.
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-1000000}
base=${2:-7400}
warm=${WARM:-2}
runs=${RUNS:-3}
sizes=${SIZES:-single 1 2 3}
events=${EVENTS:-$(( keys / 10 < 20000 ? 20000 : (keys / 10 > 100000 ? 100000 : keys / 10) ))}
warm_events=$((events / 5))
out=${OUT:-docs/cluster-scaling.md}
producer="./jgears bench-cluster $keys"
[ -n "${OUT:-}" ] && producer="./jgears bench (CLUSTER_KEYS=$keys)"
# ISOLATION shared: one warm context per jgears, as RedisGears 1.2 runs scripts (a fresh context per run
# would measure context creation and a cold JIT, not the batch).
query="GB().count().run('bench:*')"
# The counter of an event key ev:{tN}:... is n:{tN}: the same hash tag, so the same slot and shard, and a
# plain execute() on the local Redis reaches it, as RedisGears scripts are written.
register="GB('KeysReader').foreach(lambda r: execute('INCR', 'n:' + r['key'].split(':')[1])).register(prefix='ev:*', eventTypes=['set'])"
timeout_s=${EVENT_TIMEOUT:-900}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }

dir=
cleanup() {
  if [ -n "$dir" ]; then
    ./jgears cluster stop --dir "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
  fi
}
trap cleanup EXIT

# The sum of every counter n:{tN}, each read on the master holding it.
counters() {
  local total=0 m part
  for m in $(seq 0 $(($1 - 1))); do
    # One GET each: an MGET may not span slots on a cluster node.
    part=$(sed 's/^/GET /' "$dir/tags-$m.txt" | redis-cli -p $((base + m)) | awk '{ s += $1 } END { print s + 0 }')
    total=$((total + part))
  done
  echo "$total"
}

# Sends round $2 (files events-$2-<m>.resp) to the $1 masters at once, waits until the counters reach $3;
# prints the seconds from the first SET sent to the last event handled, or "incomplete".
event_round() {
  local n=$1 rnd=$2 target=$3 start m
  start=$(now)
  for m in $(seq 0 $((n - 1))); do redis-cli -p $((base + m)) --pipe < "$dir/events-$rnd-$m.resp" >/dev/null & done
  wait
  while [ "$(counters "$n")" -lt "$target" ]; do
    if [ "$(awk -v a="$start" -v b="$(now)" -v t="$timeout_s" 'BEGIN { print (b - a > t) }')" = 1 ]; then
      echo "incomplete ($(counters "$n") of $target after ${timeout_s} s)"; return
    fi
    sleep 0.05
  done
  elapsed "$start"
}

rows=()
for size in $sizes; do
  dir=$(mktemp -d /tmp/jgears-bench-cluster-XXXX)
  if [ "$size" = single ]; then
    # The reference: one Redis without cluster mode and its jgears, measured the same way at the same time.
    n=1
    mkdir -p "$dir/redis-single"
    redis-server --port "$base" --bind 127.0.0.1 --save '' --appendonly yes --dir "$dir/redis-single" --daemonize yes \
      --pidfile "$dir/redis-single/redis.pid" --logfile "$dir/redis-single/redis.log" >/dev/null
    for _ in $(seq 100); do redis-cli -p "$base" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    ./jgears start --daemonize --redis "redis://127.0.0.1:$base" --port $((base + 100)) --data "$dir/jgears-single" >/dev/null
  else
    n=$size
    ./jgears cluster start "$n" --dir "$dir" --base-port "$base" >/dev/null
  fi
  python3 bench/cluster_resp.py keys "$n" "$dir" "$keys"
  for m in $(seq 0 $((n - 1))); do redis-cli -p $((base + m)) --pipe < "$dir/load-$m.resp" >/dev/null & done
  wait
  rm -f "$dir"/load-*.resp
  redis-cli -p $((base + 100)) RG.PYEXECUTE "GB('ShardsIDReader').run()" ISOLATION shared >/dev/null  # the shared contexts exist

  # Batch. Warm-up on a ninth of the keys (bench:1*; the SCAN still walks them all) until a run is no longer
  # 15% faster than the one before (at least $warm runs, at most $((warm + 6))): every jgears' JIT compiles
  # the read path, which cold takes several times a warm run on this machine.
  previous=
  for w in $(seq $((warm + 6))); do
    start=$(now)
    redis-cli -p $((base + 100)) RG.PYEXECUTE "GB().count().run('bench:1*')" ISOLATION shared >/dev/null
    secs=$(elapsed "$start")
    if [ "$w" -ge "$warm" ] && [ "$(awk -v s="$secs" -v p="${previous:-0}" 'BEGIN { print (p > 0 && s > 0.85 * p) }')" = 1 ]; then break; fi
    previous=$secs
  done
  warm_batch=$w
  times=()
  loads=()
  result=
  for _ in $(seq "$runs"); do
    start=$(now)
    result=$(redis-cli -p $((base + 100)) RG.PYEXECUTE "$query" ISOLATION shared | head -1)
    times+=("$(elapsed "$start")")
    loads+=("$(load1)")
  done
  best=$(printf '%s\n' "${times[@]}" | sort -g | head -1)
  median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

  # Key events.
  redis-cli -p $((base + 100)) RG.PYEXECUTE "$register" >/dev/null
  for m in $(seq 0 $((n - 1))); do
    for _ in $(seq 600); do
      [ -n "$(redis-cli -p $((base + 100 + m)) RG.DUMPREGISTRATIONS)" ] && break
      sleep 0.1
    done
  done
  python3 bench/cluster_resp.py events "$n" "$dir" "$warm_events" w
  python3 bench/cluster_resp.py events "$n" "$dir" "$events" m
  # Warm-up rounds (the same keys again: SET fires the event whether or not the key exists) until a round
  # is no longer 15% faster than the one before, at most 6.
  previous=
  done_events=0
  for w in $(seq 6); do
    secs=$(event_round "$n" w $((done_events + warm_events)))
    [[ $secs =~ ^[0-9.]+$ ]] || { echo "warm-up events: $secs" >&2; break; }
    done_events=$((done_events + warm_events))
    if [ "$w" -ge 2 ] && [ "$(awk -v s="$secs" -v p="$previous" 'BEGIN { print (s > 0.85 * p) }')" = 1 ]; then break; fi
    previous=$secs
  done
  warm_rounds=$w
  event_secs=$(event_round "$n" m $((done_events + events)))
  loads+=("$(load1)")
  if [[ $event_secs =~ ^[0-9.]+$ ]]; then
    event_rate=$(awk -v e="$events" -v s="$event_secs" 'BEGIN { printf "%.0f", e / s }')
  else
    event_rate=$event_secs
  fi
  load_range=$(printf '%s\n' "${loads[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }')
  echo "masters $size: $warm_batch warm-up batch runs, $warm_rounds warm-up event rounds; batch runs ${times[*]} s" >&2
  label=$size; [ "$size" = single ] && label="1, no cluster"
  rows+=("| $label | $keys | $result | $(printf '%.2f' "$best") | $(awk -v k="$keys" -v s="$best" 'BEGIN { printf "%.0f", k / s }') | $(awk -v k="$keys" -v s="$median" 'BEGIN { printf "%.0f", k / s }') | $events | $event_secs | $event_rate | $load_range |")
  echo "${rows[-1]}"
  cleanup
  dir=
done

{
  [ -z "${OUT:-}" ] && { echo "# Cluster scaling"; echo; }
  echo "Written by \`$producer\` on $(date -u +%Y-%m-%d) ($(nproc) cores): a local cluster of $(echo "$sizes" | sed 's/single *//; s/ /, /g')"
  echo "masters with a jgears beside each, all on this one machine, keys spread over the masters by slot; the"
  echo "row \"1, no cluster\" is one Redis without cluster mode and its jgears, measured the same way just before."
  echo "- Batch: \`RG.PYEXECUTE \"$query\" ISOLATION shared\` sent to the first jgears, the best and the"
  echo "  median of $runs runs, after warm-up runs over a ninth of the keys until the runs stop getting faster."
  echo "- Key events: \`$register\`, registered once through the first jgears (it installs on every shard);"
  echo "  $events SETs of keys \`ev:{tN}:...\` (256 hash tags) pipelined into every master at once (\`redis-cli"
  echo "  --pipe\`), timed from the first SET sent until the counters add up to every event; before it, warm-up"
  echo "  rounds of $warm_events events until they stop getting faster."
  echo "- Load: the machine's 1-minute load average during the row (other work shares the 2 cores)."
  echo
  echo "| masters | keys | count | batch s (best) | keys/s (best) | keys/s (median) | events | events s | events/s | load |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  cat bench/cluster-notes.md
} > "$out"
