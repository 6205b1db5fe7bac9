#!/usr/bin/env bash
# Interpreter-mode RG.PYEXECUTE (a new context per call) on a freshly started jgears from a build dir:
# calls/s of bursts once the pool is warm, and RG.PYSTATS' per-context figures.
# usage: bash bench/ctxbench.sh [PROJECT_DIR_WITH_A_BUILT_target [PORT [CALLS]]]  (./jgears build first)
dir=${1:-$(cd "$(dirname "$0")/.." && pwd)}; port=${2:-6399}; calls=${3:-300}
data=$(mktemp -d)
cd "$dir"
setsid /usr/lib/jvm/temurin-25-jdk-amd64/bin/java $(cat target/jvm.args) -Xss16m -cp "target/jgears.jar:target/lib/*" io.jgears.cli.Main start \
  --port $port --data $data > $data/log 2>&1 < /dev/null &
pid=$!
t0=$(date +%s.%N)
until redis-cli -p $port PING 2>/dev/null | grep -q PONG; do sleep 0.1; done
t1=$(date +%s.%N)
echo "first PING after $(echo "$t1 - $t0" | bc) s"
sleep 20
for c in 1 1 2 4; do
  redis-benchmark -p $port -c $c -n $calls --csv RG.PYEXECUTE "GB('ShardsIDReader').run()" | tail -1 | sed "s/^/c=$c /"
  sleep 15
done
redis-cli -p $port RG.PYSTATS | paste - - | grep -E "contextsCreated|avgContextCreate|processRSS|pooled"
echo "RSS (ps): $(ps -o rss= -p $pid) KB"
kill $pid; wait $pid 2>/dev/null
rm -rf $data
