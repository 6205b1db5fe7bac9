#!/usr/bin/env bash
# ./jgears bench [scale]: runs the benchmarks (not part of the test suite), writes docs/benchmarks.md and
# docs/benchmarks.png, and prints one summary line per comparison. scale 1 (default) is the full size of
# the benchmarks issue (1M keys, 1M stream entries, 100k events); 0.1 is a quick run.
# ./jgears bench SCALE PARTS (e.g. ./jgears bench 1 3: the key-event execute() row alone) runs only those
# parts of the comparison, prints their figures and per-round lines, and leaves docs/ as it is;
# JGEARS_BENCH_SET=Key=value,... sets jgears config for the run (e.g. KeyEventConcurrency=4).
# The scaling section (a local Redis Cluster of 1, 2 and 3 masters, bench/cluster.sh) runs with 1,000,000
# keys at scale 1 (CLUSTER_KEYS=n sets it, 0 leaves the section out; about 10 minutes on a quiet 2-core
# machine); ./jgears bench-cluster KEYS runs the row alone and writes docs/cluster-scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-1}"
parts="${2:-}"
out=docs/benchmarks.md
flags="$(cat target/jvm.args) -Xss16m -Xmx8g -Djava.awt.headless=true -Djgears.bench.set=${JGEARS_BENCH_SET:-} ${JGEARS_BENCH_JAVA_OPTS:-}"
cp="target/jgears.jar:target/lib/*"
if [ -n "$parts" ]; then
  # shellcheck disable=SC2086
  java $flags -cp "$cp" io.jgears.bench.ComparisonBench "$(mktemp -d)/benchmarks.png" "$scale" "$parts" 2> >(grep -E 'round|SUMMARY' >&2)
  exit 0
fi
foundation=$(mktemp)
comparison=$(mktemp)
# shellcheck disable=SC2086
java $flags -cp "$cp" io.jgears.bench.FoundationBench 300 > "$foundation" 2> bench/last-run.log
# shellcheck disable=SC2086
java $flags -cp "$cp" io.jgears.bench.ComparisonBench docs/benchmarks.png "$scale" > "$comparison" 2> bench/last-comparison.log
cluster_keys=${CLUSTER_KEYS:-$(awk -v s="$scale" 'BEGIN { printf "%d", 1000000 * s }')}
scaling=$(mktemp)
if [ "$cluster_keys" -gt 0 ]; then
  OUT=$scaling bash bench/cluster.sh "$cluster_keys" > /dev/null 2> bench/last-cluster.log
fi
{
  echo "# jgears benchmarks"
  echo
  echo "Written by \`./jgears bench $scale\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB,"
  echo "$(redis-server --version | cut -d' ' -f1-3), $(python3 --version)). Everything runs on this one machine: jgears, Redis,"
  echo "the load generators and the baselines share the same 2 cores."
  echo
  echo "## Side by side (the benchmarks issue)"
  echo
  echo "![ratios](benchmarks.png)"
  echo
  cat "$comparison"
  if [ -s "$scaling" ]; then
    echo
    echo "## Scaling: a Redis Cluster of 1, 2 and 3 masters"
    echo
    echo "At this bench's size ($cluster_keys keys); \`./jgears bench-cluster KEYS\` runs the row alone and writes"
    echo "[cluster-scaling.md](cluster-scaling.md)."
    echo
    cat "$scaling"
    echo
  fi
  echo "## Foundation: sub-interpreters and RG.PYEXECUTE"
  echo
  cat "$foundation"
  echo
  echo "Reading these: creating a GraalPy context (core modules, the jgears runtime, pre-imported stdlib modules)"
  echo "is the expensive step, which is why the warm pool exists; a call that finds the pool empty pays it."
  echo "Back-to-back RG.PYEXECUTE calls each consume a fresh sub-interpreter, so their sustained rate is the"
  echo "pool's refill rate on 2 cores, not the cost of the call itself. The heap figures are after full GCs"
  echo "and are noisy (the JIT and the engine's shared code caches grow while the run warms up)."
  cat bench/below.md
} > "$out"
grep '^SUMMARY' bench/last-comparison.log | sed 's/^SUMMARY /  /'
[ -s "$scaling" ] && grep '^| [0-9]' "$scaling" | sed 's/^/  cluster /'
rm -f "$foundation" "$comparison" "$scaling"
echo "written: $out, docs/benchmarks.png"
