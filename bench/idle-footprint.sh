#!/usr/bin/env bash
# Idle footprint of a freshly started jgears: first PING, pool full, RSS then, +30 s and +60 s later.
# JVM flags to try from OPTS (after jgears' own, so they win); a project dir with a built target from DIR.
# usage: OPTS="-XX:..." bash bench/idle-footprint.sh
dir=${DIR:-$(cd "$(dirname "$0")/.." && pwd)}; port=6396; data=$(mktemp -d)
cd $dir
setsid /usr/lib/jvm/temurin-25-jdk-amd64/bin/java $(cat target/jvm.args) ${OPTS:-} -Xss16m \
  -cp "target/jgears.jar:target/lib/*" io.jgears.cli.Main start --port $port --data $data > $data/log 2>&1 < /dev/null &
pid=$!
t0=$(date +%s.%N)
until redis-cli -p $port PING 2>/dev/null | grep -q PONG; do sleep 0.05; if ! kill -0 $pid 2>/dev/null; then tail $data/log; exit 1; fi; done
p=$(echo "$(date +%s.%N) - $t0" | bc)
until [ "$(redis-cli -p $port RG.PYSTATS | paste - - | awk '$1=="pooledContexts"{p=$2} $1=="poolSize"{s=$2} END{print (p==s)}')" = 1 ]; do sleep 0.1; done
f=$(echo "$(date +%s.%N) - $t0" | bc)
r0=$(( $(ps -o rss= -p $pid) / 1024 ))
sleep 30; r1=$(( $(ps -o rss= -p $pid) / 1024 )); sleep 30; r2=$(( $(ps -o rss= -p $pid) / 1024 ))
echo "OPTS=[${OPTS:-}] ping ${p:0:4}s full ${f:0:5}s rss ${r0}/${r1}/${r2} MB"
kill $pid; wait $pid 2>/dev/null; rm -rf $data
