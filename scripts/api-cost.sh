#!/usr/bin/env bash
# The API server's cost: per-tick CPU of `hostwatch run` (every thread's run time from
# /proc/PID/task/*/schedstat) and its RSS (VmRSS, VmHWM), without the API, with the API idle,
# and with the API under 100 requests/s (a mix of /health, /status, /metrics and /, one
# connection each, from a Python client).
# Usage: scripts/api-cost.sh [BINARY]   (default target/release/hostwatch; DURATION seconds per
# window, default 60; RATE requests/s, default 100; PATHS, default /health,/status,/metrics,/;
# the embedded default rules at a 1 s interval, with no channel).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/hostwatch}
secs=${DURATION:-60}
rate=${RATE:-100}
paths=${PATHS:-/health,/status,/metrics,/}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/plain.json" <<JSON
{"interval": "1s", "state_dir": "$work/state-plain"}
JSON
cat > "$work/api.json" <<JSON
{"interval": "1s", "state_dir": "$work/state-api", "api": {"listen": "127.0.0.1:$port"}}
JSON
cat > "$work/load.py" <<'PY'
import socket, sys, time
port, rate, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
paths = sys.argv[4].split(",")
ok = failed = 0
lat = []
start = time.monotonic()
i = 0
while i / rate < secs:
    due = start + i / rate
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    path = paths[i % len(paths)]
    i += 1
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        if data.startswith(b"HTTP/1.1 200"):
            ok += 1
        else:
            failed += 1
    except OSError:
        failed += 1
    lat.append(time.monotonic() - t0)
lat.sort()
pick = lambda q: lat[int((len(lat) - 1) * q)] * 1000 if lat else float("nan")
print(f"load: {ok} answered 200, {failed} failed, {ok / secs:.1f} requests/s; "
      f"latency median {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, max {pick(1.0):.2f} ms")
PY
run_ns() { # the process's CPU time: every thread's schedstat run time, in ns
  local total=0 t
  for t in /proc/"$pid"/task/*/schedstat; do total=$((total + $(cut -d' ' -f1 "$t"))); done
  echo "$total"
}
api_ns() { # the server thread's run time (0 when there is none), in ns
  local t
  for t in /proc/"$pid"/task/*; do
    if [ "$(cat "$t/comm")" = hostwatch-api ]; then cut -d' ' -f1 "$t/schedstat"; return; fi
  done
  echo 0
}
field() { awk -v f="$1:" '$1 == f {print $2}' /proc/"$pid"/status; }
report() { # LABEL NS_BEFORE NS_AFTER API_NS_BEFORE API_NS_AFTER
  local ns=$(($3 - $2)) api=$(($5 - $4))
  awk -v l="$1" -v ns="$ns" -v api="$api" -v s="$secs" -v rss="$(field VmRSS)" \
    -v hwm="$(field VmHWM)" -v th="$(field Threads)" 'BEGIN {
      printf "%-22s %8.1f us CPU per tick (%.3f %% of a core; server thread %.1f us)  VmRSS %5d KiB  VmHWM %5d KiB  %d threads\n",
        l, ns / s / 1000, ns / s / 1e7, api / s / 1000, rss, hwm, th }'
}
start() { # CONFIG
  "$bin" --log-level warn run --config "$1" &
  pid=$!
  sleep 5
}
stop() {
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

echo "hostwatch API cost: $bin, ${secs} s windows, 1 s interval (one tick per second)"
start "$work/plain.json"
a=$(run_ns); sleep "$secs"; b=$(run_ns)
report "without api" "$a" "$b" 0 0
stop

start "$work/api.json"
a=$(run_ns); x=$(api_ns); sleep "$secs"; b=$(run_ns); y=$(api_ns)
report "api, idle" "$a" "$b" "$x" "$y"
a=$(run_ns); x=$(api_ns)
python3 "$work/load.py" "$port" "$rate" "$secs" "$paths" > "$work/load.txt"
b=$(run_ns); y=$(api_ns)
report "api, ${rate}/s $paths" "$a" "$b" "$x" "$y"
cat "$work/load.txt"
stop
