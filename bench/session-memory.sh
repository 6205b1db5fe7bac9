#!/usr/bin/env bash
# Retained memory per idle session: a jgears started for the run, heap in use after a full GC (jcmd GC.run)
# and RSS, before and after N interpreter-mode sessions that each keep one CommandReader registration
# (so they stay alive, idle), then after they are unregistered.
# usage: bash bench/session-memory.sh [N [PORT]]   (./jgears build first)
n=${1:-50}; port=${2:-6392}
dir=$(cd "$(dirname "$0")/.." && pwd); data=$(mktemp -d); jdk=/usr/lib/jvm/temurin-25-jdk-amd64
cd "$dir"
setsid $jdk/bin/java $(cat target/jvm.args) -Xss16m -cp "target/jgears.jar:target/lib/*" io.jgears.cli.Main start \
  --port $port --data $data > $data/log 2>&1 < /dev/null &
pid=$!
until redis-cli -p $port PING 2>/dev/null | grep -q PONG; do sleep 0.1; kill -0 $pid || { tail -3 $data/log; exit 1; }; done
until [ "$(redis-cli -p $port RG.PYSTATS | paste - - | awk '$1=="pooledWithPreImports"{p=$2} $1=="poolSize"{s=$2} END{print (p==s)}')" = 1 ]; do sleep 0.2; done
heap() { $jdk/bin/jcmd $pid GC.run > /dev/null; sleep 1; $jdk/bin/jcmd $pid GC.heap_info | awk '/garbage-first heap/{for(i=1;i<=NF;i++) if($i=="used"){u=$(i+1); sub("K,?","",u); print int(u/1024)}}'; }
rss() { echo $(( $(ps -o rss= -p $pid) / 1024 )); }
h0=$(heap); r0=$(rss)
for i in $(seq $n); do
  redis-cli -p $port RG.PYEXECUTE "GB('CommandReader').map(lambda a: a).register(trigger='t$i')" ID s$i > /dev/null
done
# The pool refills behind the sessions: wait for it, so the delta is the sessions' alone.
until [ "$(redis-cli -p $port RG.PYSTATS | paste - - | awk '$1=="pooledWithPreImports"{p=$2} $1=="poolSize"{s=$2} END{print (p==s)}')" = 1 ]; do sleep 0.2; done
h1=$(heap); r1=$(rss)
sessions=$(redis-cli -p $port RG.PYSTATS | paste - - | awk '$1=="sessions"{print $2}')
for id in $(redis-cli -p $port RG.DUMPREGISTRATIONS | grep -A1 '^id$' | grep -v '^id$' | grep -v -- --); do
  redis-cli -p $port RG.UNREGISTER $id > /dev/null
done
sleep 2; h2=$(heap); r2=$(rss)
left=$(redis-cli -p $port RG.PYSTATS | paste - - | awk '$1=="sessions"{print $2}')
echo "$n idle sessions ($sessions alive): heap after GC $h0 -> $h1 MB ($(( (h1 - h0) * 1024 / n )) KB per session), RSS $r0 -> $r1 MB"
echo "after unregistering them ($left sessions alive): heap $h2 MB, RSS $r2 MB"
kill $pid; wait $pid 2>/dev/null; rm -rf $data
