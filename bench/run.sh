#!/usr/bin/env bash
# ./jgears bench: runs the benchmarks (not part of the test suite) and writes docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks.md
tmp=$(mktemp)
# shellcheck disable=SC2046
java $(cat target/jvm.args) -Xss16m -Xmx8g -cp "target/jgears.jar:target/lib/*" io.jgears.bench.FoundationBench "${1:-1000}" > "$tmp" 2> bench/last-run.log
{
  echo "# jgears benchmarks"
  echo
  echo "Written by \`./jgears bench\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB)."
  echo
  echo "## Foundation: sub-interpreters and RG.PYEXECUTE"
  echo
  cat "$tmp"
  echo
  echo "Reading these: creating a GraalPy context (core modules, the jgears runtime, pre-imported stdlib modules)"
  echo "is the expensive step, which is why the warm pool exists; a call that finds the pool empty pays it."
  echo "Back-to-back RG.PYEXECUTE calls each consume a fresh sub-interpreter, so their sustained rate is the"
  echo "pool's refill rate on 2 cores, not the cost of the call itself. The heap figures are after full GCs"
  echo "and are noisy (the JIT and the engine's shared code caches grow while the run warms up)."
} > "$out"
rm -f "$tmp"
cat "$out"
