#!/usr/bin/env bash
# Runs RedisGears 1.2.13's own test suite (../shared/compat, kept outside the project) against a jgears
# started here for the run: ./jgears compat [--port P] [-k SUBSTRING ...] [--out FILE] [--timeout S]
# The suite's files are never copied into the project; the runner plays RLTest against this one server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
compat=${JGEARS_COMPAT_DIR:-$root/../shared/compat}
if [ ! -f "$compat/run.py" ]; then
  echo "jgears compat: RedisGears' suite not found at $compat (set JGEARS_COMPAT_DIR)" >&2
  exit 2
fi
port=6391
out=
timeout=60
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) pass+=("$1"); shift ;;
  esac
done
work=$(mktemp -d /tmp/jgears-compat.XXXXXX)
out=${out:-$work/compat.json}
log=$work/jgears.log
cat > "$work/restart.sh" <<EOT
#!/usr/bin/env bash
# Gives a test a freshly started jgears (new data dir) on the same port.
if [ -f "$work/pid" ]; then kill \$(cat "$work/pid") 2>/dev/null; for i in \$(seq 100); do kill -0 \$(cat "$work/pid") 2>/dev/null || break; sleep 0.1; done; fi
rm -rf "$work/data"
cd "$root"
setsid java \$(cat target/jvm.args) -Xss16m -cp "target/jgears.jar:target/lib/*" io.jgears.cli.Main start \
  --port $port --data "$work/data" >> "$log" 2>&1 < /dev/null &
echo \$! > "$work/pid"
for i in \$(seq 120); do redis-cli -p $port PING 2>/dev/null | grep -q PONG && exit 0; sleep 0.5; done
echo "jgears did not answer PING on port $port (log: $log)" >&2; exit 1
EOT
chmod +x "$work/restart.sh"
stop() { [ -f "$work/pid" ] && kill "$(cat "$work/pid")" 2>/dev/null || true; }
trap stop EXIT
"$work/restart.sh"
set +e
/usr/bin/python3 "$compat/run.py" --tests "$compat/redisgears-pytest" --port "$port" \
  --calibration "$compat/results/rg-1.2.13.json" --skip-calibrated-na --timeout "$timeout" --retries 1 \
  --restart-cmd "$work/restart.sh" --out "$out" "${pass[@]}"
rc=$?
echo "jgears compat: details in $out, server log in $log" >&2
exit $rc
