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
} > "$out"
rm -f "$tmp"
cat "$out"
