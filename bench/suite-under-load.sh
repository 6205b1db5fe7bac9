#!/usr/bin/env bash
# The suite under load (issue 16): clone A runs ./jgears test twice in a row from a clean clone while clone B
# loops ./jgears test beside it. Logs and a summary (with the load average every 30 s) in WORKDIR.
# usage: bash bench/suite-under-load.sh [REPO (default: this checkout)] [WORKDIR (default: /tmp/jgears-load)]
set -u
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
work=${2:-/tmp/jgears-load}
mkdir -p "$work" && cd "$work" || exit 1
rm -rf A B A.done summary.txt loadavg.txt A-*.log B-*.log
git clone -q "$repo" A && git clone -q "$repo" B || { echo "clone failed" >> summary.txt; exit 1; }
echo "at $(git -C A log --oneline -1)" > summary.txt
( cd B; i=0; while [ ! -f "$work/A.done" ]; do i=$((i+1)); ./jgears test > "$work/B-$i.log" 2>&1; echo "B run $i rc=$? $(date +%T)" >> "$work/summary.txt"; done ) &
bpid=$!
( while [ ! -f "$work/A.done" ]; do echo "$(date +%T) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/loadavg.txt"; sleep 30; done ) &
cd A
for r in 1 2; do
  echo "A run $r start $(date +%T)" >> "$work/summary.txt"
  ./jgears test > "$work/A-$r.log" 2>&1
  echo "A run $r rc=$? end $(date +%T) $(grep -E 'Tests run:' "$work/A-$r.log" | tail -1)" >> "$work/summary.txt"
done
touch "$work/A.done"
wait $bpid
echo "all done $(date +%T)" >> "$work/summary.txt"
cat "$work/summary.txt"
