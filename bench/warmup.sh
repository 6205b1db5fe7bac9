#!/usr/bin/env bash
# Warm-up of a freshly started jgears: first PING, pool full (ready), idle RSS then and a minute later; then
# RG.TRIGGER on a CommandReader registration in 2,000-call chunks from the first call (one client), and the warm
# rate after 100k calls. Extra JVM flags (e.g. Truffle engine options as -Dpolyglot.engine.X=Y) from
# JGEARS_WARMUP_JAVA_OPTS.
# usage: bash bench/warmup.sh [PROJECT_DIR_WITH_A_BUILT_target [PORT]]   (./jgears build first)
dir=${1:-$(cd "$(dirname "$0")/.." && pwd)}; port=${2:-6398}
data=$(mktemp -d)
cd "$dir"
setsid /usr/lib/jvm/temurin-25-jdk-amd64/bin/java $(cat target/jvm.args) ${JGEARS_WARMUP_JAVA_OPTS:-} -Xss16m \
  -cp "target/jgears.jar:target/lib/*" io.jgears.cli.Main start --port $port --data $data > $data/log 2>&1 < /dev/null &
pid=$!
t0=$(date +%s.%N)
until redis-cli -p $port PING 2>/dev/null | grep -q PONG; do sleep 0.05; done
echo "first PING after $(echo "$(date +%s.%N) - $t0" | bc) s"
until [ "$(redis-cli -p $port RG.PYSTATS | paste - - | awk '$1=="pooledContexts"{p=$2} $1=="poolSize"{s=$2} END{print (p==s)}')" = 1 ]; do sleep 0.1; done
echo "pool full after $(echo "$(date +%s.%N) - $t0" | bc) s; idle RSS $(( $(ps -o rss= -p $pid) / 1024 )) MB"
# The pool takes its pre-imports and the JIT finishes what start-up queued; then a minute idle.
sleep 60; echo "idle RSS a minute later: $(( $(ps -o rss= -p $pid) / 1024 )) MB"
redis-cli -p $port RG.PYEXECUTE "GB('CommandReader').map(lambda a: a[1]).register(trigger='echo')" ID warm >/dev/null
chunks=()
for i in $(seq 10); do
  chunks+=($(redis-benchmark -p $port -c 1 -n 2000 --csv RG.TRIGGER echo hi | tail -1 | cut -d, -f2 | tr -d '"'))
done
echo "first 20,000 calls, calls/s per 2,000: ${chunks[*]}"
redis-benchmark -p $port -c 1 -n 80000 --csv RG.TRIGGER echo hi > /dev/null
warm=$(redis-benchmark -p $port -c 1 -n 20000 --csv RG.TRIGGER echo hi | tail -1 | cut -d, -f2 | tr -d '"')
total=0; for c in "${chunks[@]}"; do total=$(echo "$total + 2000 / $c" | bc -l); done
echo "warm (after 100k): $warm calls/s; first 20k overall: $(echo "20000 / $total" | bc) calls/s = $(echo "20000 / $total / $warm" | bc -l | cut -c1-4)x warm"
echo "RSS after: $(( $(ps -o rss= -p $pid) / 1024 )) MB"
kill $pid; wait $pid 2>/dev/null
rm -rf $data
