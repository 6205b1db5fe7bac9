#!/usr/bin/env bash
# Where the CPU goes during a fresh jgears' first RG.TRIGGER calls: a jgears started for the run, IDLE seconds
# (default 30) once it is ready, a CommandReader registration, optionally AFTER seconds of quiet (to see what
# the registration alone sets off), then CHUNKS (default 12) chunks of N (default 2000) `RG.TRIGGER echo hi`
# from one client, each with the CPU every thread group used per call (from /proc/PID/task/*/stat; thread
# names with their numbers stripped: C2_CompilerThre is HotSpot's C2, TruffleCompiler the Graal compiler's
# Truffle compilations, multiThreadIoEv the client's event loop, which runs the call).
# JVM flags in OPTS. usage: [OPTS=...] [IDLE=30] [AFTER=0] [CHUNKS=12] [N=2000] bash bench/warmup-threads.sh
set -u
export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 PATH=/usr/lib/jvm/temurin-25-jdk-amd64/bin:$PATH
cd "$(dirname "$0")/.."
JP=${JGEARS_PORT:-6521}; n=${N:-2000}
d=$(mktemp -d)
JGEARS_JAVA_OPTS="${OPTS:-}" ./jgears start -p "$JP" --data "$d" > "$d/jgears.log" 2>&1 &
for _ in $(seq 1 120); do grep -q "jgears ready" "$d/jgears.log" && break; sleep 0.5; done
jpid=$(pgrep -f "^java .*io.jgears.cli.Main start -p $JP")
trap 'kill "$jpid" 2>/dev/null; sleep 2; rm -rf "$d"' EXIT
sleep "${IDLE:-30}"
. bench/thread-ticks.sh
hz=$(getconf CLK_TCK)
redis-cli -p "$JP" RG.PYEXECUTE "GB('CommandReader').map(lambda a: a[1]).register(trigger='echo')" ID warm > /dev/null
if [ "${AFTER:-0}" != 0 ]; then
  ticks "$jpid" > "$d/r0"; sleep "$AFTER"; ticks "$jpid" > "$d/r1"
  echo "CPU ms in the ${AFTER} s after the registration: $(join -a2 "$d/r0" "$d/r1" | awk -v hz="$hz" 'NF==3{d=$3-$2} NF==2{d=$2} d>0{printf "%s=%d ", $1, d*1000/hz}')"
fi
for i in $(seq "${CHUNKS:-12}"); do
  ticks "$jpid" > "$d/c0"; t0=$(date +%s.%N)
  redis-benchmark -p "$JP" -c 1 -n "$n" -q RG.TRIGGER echo hi > /dev/null
  t1=$(date +%s.%N); ticks "$jpid" > "$d/c1"
  rate=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN{printf "%.0f", n/(b-a)}')
  per=$(join -a2 "$d/c0" "$d/c1" | awk -v hz="$hz" -v n="$n" 'NF==3{d=$3-$2} NF==2{d=$2} d>0{printf "%s=%.0f ", $1, d*1e6/hz/n}')
  echo "chunk $i: $rate calls/s; CPU us per call: $per"
done
