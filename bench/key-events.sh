#!/usr/bin/env bash
# bash bench/key-events.sh [ROUNDS] [start options...]: the key-event execute() workload round by round, with
# the CPU each thread spent per event. A jgears started for the run beside a redis-server of its own, a
# KeysReader registration doing execute('INCR', 'bench:n') per SET event, then ROUNDS (default 10) rounds of
# 100,000 SETs pipelined into Redis (redis-benchmark -c 4 -P 16), each timed until bench:n reaches 100,000.
# JVM flags in OPTS, e.g. OPTS=-Djgears.carrierLanes=false bash bench/key-events.sh 10 (platform lanes, KeyEventConcurrency 4)
set -u
rounds=${1:-10}
shift || true
export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 PATH=/usr/lib/jvm/temurin-25-jdk-amd64/bin:$PATH
cd "$(dirname "$0")/.."
RP=${REDIS_PORT:-6510}; JP=${JGEARS_PORT:-6511}
d=$(mktemp -d)
redis-server --port "$RP" --save "" --appendonly no > "$d/redis.log" 2>&1 &
rpid=$!
sleep 0.5
JGEARS_JAVA_OPTS="${OPTS:-}" ./jgears start -p "$JP" --redis "redis://127.0.0.1:$RP" --data "$d" "$@" > "$d/jgears.log" 2>&1 &
for _ in $(seq 1 120); do grep -q "jgears ready" "$d/jgears.log" && break; sleep 0.5; done
jpid=$(pgrep -f "^java .*io.jgears.cli.Main start -p $JP")
trap 'kill "$jpid" 2>/dev/null; sleep 3; kill "$rpid" 2>/dev/null' EXIT
redis-cli -p "$JP" RG.PYEXECUTE "GB().foreach(lambda x: execute('INCR', 'bench:n')).register(prefix='bt:*', eventTypes=['set'])" ID bench-trigger > /dev/null
. bench/thread-ticks.sh
hz=$(getconf CLK_TCK)
for r in $(seq 1 "$rounds"); do
  redis-cli -p "$RP" DEL bench:n > /dev/null
  ticks "$jpid" > "$d/c0"; r0=$(awk '{print $14+$15}' /proc/$rpid/stat)
  t0=$(date +%s.%N)
  redis-benchmark -p "$RP" -n 100000 -c 4 -P 16 -r 100000000 -q SET bt:__rand_int__ v > /dev/null
  for _ in $(seq 1 30000); do n=$(redis-cli -p "$RP" GET bench:n); [ "${n:-0}" -ge 100000 ] && break; sleep 0.02; done
  t1=$(date +%s.%N)
  ticks "$jpid" > "$d/c1"; r1=$(awk '{print $14+$15}' /proc/$rpid/stat)
  rate=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", 100000/(b-a)}')
  per=$(join -a2 "$d/c0" "$d/c1" | awk -v hz="$hz" 'NF==3{d=$3-$2} NF==2{d=$2} d>0{printf "%s=%.1f ", $1, d*1e6/hz/100000}')
  echo "round $r: $rate events/s; CPU us per event: redis=$(awk -v a="$r0" -v b="$r1" -v hz="$hz" 'BEGIN{printf "%.1f", (b-a)*1e6/hz/100000}') $per"
done
echo "jgears RSS $(( $(awk '/VmRSS/{print $2}' /proc/"$jpid"/status) / 1024 )) MB"
