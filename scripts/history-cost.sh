#!/usr/bin/env bash
# What history adds to a tick: `scripts/tick-cpu.sh` run side by side in pairs, history off
# beside each history configuration (the built-in file; the file and SQLite; the file and an
# InfluxDB push to a real influxd on loopback), so both runs of a pair see the same machine.
# Usage: scripts/history-cost.sh [BINARY] [SECONDS]   (default target/release/hostwatch, 60 s)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/hostwatch}
secs=${2:-60}
work=$(mktemp -d)
influx_pid=
trap '[ -n "$influx_pid" ] && kill "$influx_pid" 2>/dev/null; rm -rf "$work"' EXIT

port=18086
cat > "$work/influxd.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:18088"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
CONF
if command -v influxd >/dev/null; then
  influxd -config "$work/influxd.conf" >"$work/influxd.log" 2>&1 &
  influx_pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/ping" && break; sleep 0.2; done
  curl -sf -XPOST "http://127.0.0.1:$port/query" --data-urlencode 'q=CREATE DATABASE hostwatch' >/dev/null
fi

pair() { # label, history JSON
  local label=$1 json=$2
  HISTORY=false scripts/tick-cpu.sh "$bin" "$secs" >"$work/off.txt" 2>&1 &
  local off=$!
  HISTORY=$json scripts/tick-cpu.sh "$bin" "$secs" >"$work/on.txt" 2>&1
  wait "$off"
  printf '%-28s off: %s\n' "$label" "$(grep -m1 'us CPU' "$work/off.txt" | sed 's/hostwatch: //')"
  printf '%-28s on:  %s\n' "" "$(grep -m1 'us CPU' "$work/on.txt" | sed 's/hostwatch: //')"
}

pair "history file" '{}'
pair "file + sqlite" "{\"sqlite\": \"$work/history.db\"}"
if [ -n "$influx_pid" ]; then
  pair "file + influxdb" "{\"influxdb\": {\"url\": \"http://127.0.0.1:$port\", \"database\": \"hostwatch\"}}"
fi
