#!/usr/bin/env bash
# ./jgears bench-cluster [keys] [base-port]: the scaling row. For 1, 2 and 3 masters: a local cluster
# (./jgears cluster start), then
# - batch: `keys` string keys spread over the shards by slot (default 1000000), and
#   RG.PYEXECUTE "GB().count().run('bench:*')" on the first jgears (every shard reads its own keys);
#   WARM runs first (the JIT of every jgears compiles the read path), then the best and median of RUNS;
# - key events: one registration, GB('KeysReader').foreach(execute INCR of a counter beside the key),
#   sent to the first jgears (it installs on every shard), then EVENTS SETs pipelined straight into the
#   masters (redis-cli --pipe to each, all at once), timed until the counters add up to every event;
#   a warm-up round of EVENTS/5 first.
# Prints one markdown row per cluster size and writes docs/cluster-scaling.md (OUT=file: that file, with no
# title; ./jgears bench does this). Not part of the tests. SIZES="1 2 3", WARM, RUNS and EVENTS override.
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-1000000}
base=${2:-7400}
warm=${WARM:-2}
runs=${RUNS:-3}
sizes=${SIZES:-1 2 3}
events=${EVENTS:-$(( keys / 10 < 20000 ? 20000 : (keys / 10 > 100000 ? 100000 : keys / 10) ))}
warm_events=$((events / 5))
out=${OUT:-docs/cluster-scaling.md}
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
for n in $sizes; do
  dir=$(mktemp -d /tmp/jgears-bench-cluster-XXXX)
  ./jgears cluster start "$n" --dir "$dir" --base-port "$base" >/dev/null
  python3 bench/cluster_resp.py keys "$n" "$dir" "$keys"
  for m in $(seq 0 $((n - 1))); do redis-cli -p $((base + m)) --pipe < "$dir/load-$m.resp" >/dev/null & done
  wait
  rm -f "$dir"/load-*.resp
  redis-cli -p $((base + 100)) RG.PYEXECUTE "GB('ShardsIDReader').run()" ISOLATION shared >/dev/null  # the shared contexts exist

  # Batch.
  for _ in $(seq "$warm"); do redis-cli -p $((base + 100)) RG.PYEXECUTE "$query" ISOLATION shared >/dev/null; done
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
  event_round "$n" w "$warm_events" >/dev/null
  event_secs=$(event_round "$n" m $((warm_events + events)))
  loads+=("$(load1)")
  if [[ $event_secs =~ ^[0-9.]+$ ]]; then
    event_rate=$(awk -v e="$events" -v s="$event_secs" 'BEGIN { printf "%.0f", e / s }')
  else
    event_rate=$event_secs
  fi
  load_range=$(printf '%s\n' "${loads[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }')
  rows+=("| $n | $keys | $result | $(printf '%.2f' "$best") | $(awk -v k="$keys" -v s="$best" 'BEGIN { printf "%.0f", k / s }') | $(awk -v k="$keys" -v s="$median" 'BEGIN { printf "%.0f", k / s }') | $events | $event_secs | $event_rate | $load_range |")
  echo "${rows[-1]}"
  cleanup
  dir=
done

{
  [ -z "${OUT:-}" ] && { echo "# Cluster scaling"; echo; }
  echo "Written by \`./jgears bench-cluster $keys\` on $(date -u +%Y-%m-%d) ($(nproc) cores): a local cluster of $(echo "$sizes" | sed 's/ /, /g')"
  echo "masters with a jgears beside each, all on this one machine, keys spread over the masters by slot."
  echo "- Batch: \`RG.PYEXECUTE \"$query\" ISOLATION shared\` sent to the first jgears; $warm warm-up"
  echo "  runs, then the best and the median of $runs."
  echo "- Key events: \`$register\`, registered once through the first jgears (it installs on every shard), a"
  echo "  warm-up round of $warm_events events, then $events SETs of keys \`ev:{tN}:...\` (256 hash tags) pipelined"
  echo "  into every master at once (\`redis-cli --pipe\`), timed until the counters add up to every event."
  echo "- Load: the machine's 1-minute load average during the row (other work shares the 2 cores)."
  echo
  echo "| masters | keys | count | batch s (best) | keys/s (best) | keys/s (median) | events | events s | events/s | load |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  cat bench/cluster-notes.md
} > "$out"
