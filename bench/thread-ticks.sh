# Sourced by the bench scripts that report CPU per thread: ticks PID prints "thread-name ticks" per thread
# group of the process (trailing numbers stripped, so jgears-exec-1..3 are one group), sorted by name.
ticks() {
  for t in /proc/"$1"/task/*; do
    s=$(cat "$t/stat" 2>/dev/null) || continue
    name=$(sed 's/[0-9]*$//;s/ /_/g' "$t/comm")
    rest=${s##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo "$name $(( ${12} + ${13} ))"
  done | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort
}
