#!/usr/bin/env bash
# Per-tick CPU of `hostwatch run` read from /proc/PID/schedstat (nanosecond run time of every
# thread) over a measurement window, beside the floor (shared/bench/floor.c: reading the
# kernel files one sample needs, nothing else), plus RSS and threads at the end.
# Usage: scripts/tick-cpu.sh [BINARY] [SECONDS]   (default target/release/hostwatch, 60 s;
# the embedded default rules at a 1 s interval, with no channel). HISTORY='false' (or any
# JSON for the "history" key, such as '{"sqlite": "/tmp/h.db"}') sets the history section;
# unset, the default (the built-in file) is in effect.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/hostwatch}
secs=${2:-60}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
if [ -n "${HISTORY:-}" ]; then
  history=", \"history\": $HISTORY"
else
  history=""
fi
cat > "$work/config.json" <<JSON
{"interval": "1s", "state_dir": "$work/state"$history}
JSON
"$bin" --log-level warn run --config "$work/config.json" &
pid=$!
sleep 5
run_ns() { # the process's CPU time: every thread's schedstat run time, in ns
  local total=0 t
  for t in /proc/"$pid"/task/*/schedstat; do total=$((total + $(cut -d' ' -f1 "$t"))); done
  echo "$total"
}
a=$(run_ns); sleep "$secs"; b=$(run_ns)
ticks=$secs
per_tick_us=$(( (b - a) / ticks / 1000 ))
rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)
threads=$(awk '/Threads/ {print $2}' /proc/"$pid"/status)
echo "hostwatch: $per_tick_us us CPU per tick over ${secs} s, RSS ${rss} KiB, ${threads} threads"
awk -v ns=$((b - a)) -v s="$secs" 'BEGIN { printf "hostwatch: %.3f %% of a core (%.3f ms CPU per second)\n", ns / s / 1e7, ns / s / 1e6 }'
floor_src=../shared/bench/floor.c
if [ -f "$floor_src" ] && command -v cc >/dev/null; then
  cc -O2 -o "$work/floor" "$floor_src" && "$work/floor" 20000
fi
