#!/usr/bin/env bash
# A fleet on existing engines, as a demo on loopback: builds hostwatch, starts three agents
# (hosts web-1, web-2, web-3), one Prometheus scraping them and one Alertmanager receiving
# their alerts, prints the URLs, makes a rule fire on every agent and shows it in
# Alertmanager (one group for the rule, one alert per host), then, after Enter or DURATION
# seconds, clears it with a SIGHUP reload and shows the alerts resolve. Everything started
# here is stopped and its temporary directory removed on exit (KEEP=1 keeps the directory).
#
#   scripts/fleet-demo.sh            # wait for Enter before clearing
#   scripts/fleet-demo.sh 30         # or wait 30 s (also DURATION=30)
#   PROFILE=debug scripts/fleet-demo.sh 10   # a quicker dev build
#
# Needs no root. Needs Debian's prometheus and prometheus-alertmanager (amtool), curl and
# python3 (to read JSON answers).
set -euo pipefail

DURATION=${1:-${DURATION:-}}
PROFILE=${PROFILE:-release}
RULE=fleet_demo
HOSTS=(web-1 web-2 web-3)

die() { echo "fleet-demo: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is missing (apt-get install -y $2)"; }
need prometheus prometheus
need prometheus-alertmanager prometheus-alertmanager
need amtool prometheus-alertmanager
need curl curl
need python3 python3
[[ -z $DURATION || $DURATION =~ ^[0-9]+$ ]] || die "DURATION is a number of seconds, not '$DURATION'"

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hostwatch-fleet-demo.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== building hostwatch ($PROFILE)"
if [[ $PROFILE == release ]]; then
    cargo build --quiet --release --manifest-path "$root/Cargo.toml"
else
    cargo build --quiet --manifest-path "$root/Cargo.toml"
fi
hostwatch="$root/target/$PROFILE/hostwatch"
[[ -x $hostwatch ]] || die "no binary at $hostwatch"

# Loopback ports free a moment ago.
read -r am_port prom_port p1 p2 p3 < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
agent_ports=("$p1" "$p2" "$p3")
am="http://127.0.0.1:$am_port"
prom="http://127.0.0.1:$prom_port"

# JSON from a URL, then a Python expression over it (`j`).
jget() { curl -fsS "$1" | python3 -c "import json, sys; j = json.load(sys.stdin); print($2)"; }

# Polls `$1` (a command) every 0.2 s until it succeeds, at most `$2` seconds.
wait_until() {
    local cmd=$1 limit=$2 what=$3 start=$SECONDS
    until eval "$cmd" >/dev/null 2>&1; do
        (( SECONDS - start < limit )) || die "no $what after ${limit}s (logs in $work; KEEP=1 keeps them)"
        sleep 0.2
    done
}

echo "== starting Alertmanager in $work"
cat >"$work/alertmanager.yml" <<EOF
route:
  receiver: demo
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: demo   # no integrations: alerts are stored and shown, never sent anywhere
EOF
prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/am-data" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    >/dev/null 2>"$work/alertmanager.log" &
pids+=($!)

wait_until "curl -fsS $am/-/ready" 60 "Alertmanager ready"

# An agent's config; $2 is the rule's threshold.
agent_config() {
    cat <<EOF
{
  "host": "$1", "interval": "1s", "state_dir": "$work/state-$1",
  "api": {"listen": "127.0.0.1:$3"},
  "rules": [{"name": "$RULE", "metric": "load.1", "warn": "$2",
             "description": "Demo rule: fires at once, cleared by a reload"}],
  "channels": {"am": {"type": "alertmanager", "url": "$am", "resend_every": "1m"}},
  "routes": [{"channels": ["am"]}]
}
EOF
}

echo "== starting three agents (rule $RULE: load.1 >= 0, true at once)"
for i in 0 1 2; do
    host=${HOSTS[$i]}
    agent_config "$host" ">= 0" "${agent_ports[$i]}" >"$work/$host.json"
    "$hostwatch" run --config "$work/$host.json" >"$work/$host.out" 2>"$work/$host.log" &
    pids+=($!)
done
agent_pids=("${pids[@]:1:3}")
for i in 0 1 2; do
    pid=${agent_pids[$i]} port=${agent_ports[$i]}
    # An agent that exited (its port taken meanwhile, say) ends the wait at once.
    wait_until "! kill -0 $pid || curl -fsS http://127.0.0.1:$port/health" 30 \
        "health from the agent on :$port"
    kill -0 "$pid" 2>/dev/null || die "${HOSTS[$i]} exited: $(cat "$work/${HOSTS[$i]}.log")"
done

# Prometheus last: the agents' ports were bound a moment after they were chosen.
echo "== starting Prometheus"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: hostwatch
    honor_labels: false
    static_configs:
      - targets: ['127.0.0.1:$p1', '127.0.0.1:$p2', '127.0.0.1:$p3']
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom-data" \
    --web.listen-address="127.0.0.1:$prom_port" >/dev/null 2>"$work/prometheus.log" &
pids+=($!)
wait_until "curl -fsS $prom/-/ready" 60 "Prometheus ready"

cat <<EOF

  Prometheus UI     $prom/targets    ($prom/graph?g0.expr=up)
  Alertmanager UI   $am/#/alerts
  web-1 status      http://127.0.0.1:$p1/
  web-2 status      http://127.0.0.1:$p2/
  web-3 status      http://127.0.0.1:$p3/

EOF

echo "== Prometheus: up per target"
t0=$SECONDS
wait_until "[[ \$(jget '$prom/api/v1/query?query=up' \"sum(r['value'][1] == '1' for r in j['data']['result'])\") == 3 ]]" 60 "up == 1 for the three agents"
jget "$prom/api/v1/query?query=up" \
    "'\n'.join('  up{instance=\"%s\", job=\"%s\"} %s' % (r['metric']['instance'], r['metric']['job'], r['value'][1]) for r in j['data']['result'])"
echo "  (all three up $((SECONDS - t0)) s after Prometheus was ready)"

echo "== Alertmanager: the rule fires on every host"
count_hosts() {
    amtool alert query --alertmanager.url="$am" -o json "alertname=$RULE" |
        python3 -c 'import json, sys; print(len({a["labels"]["host"] for a in json.load(sys.stdin)}))'
}
wait_until "[[ \$(count_hosts) == 3 ]]" 30 "an alert per host in Alertmanager"
echo "\$ amtool alert query --alertmanager.url=$am alertname=$RULE"
amtool alert query --alertmanager.url="$am" "alertname=$RULE"
echo "\$ curl $am/api/v2/alerts/groups   (grouped by alertname)"
jget "$am/api/v2/alerts/groups" \
    "'\n'.join('  group %s: %s' % (g['labels'], sorted(a['labels']['host'] for a in g['alerts'])) for g in j)"

if [[ -n $DURATION ]]; then
    echo "== clearing in $DURATION s (look around at the URLs above)"
    sleep "$DURATION" &
    pids+=($!)
    wait $!   # a signal's trap runs at once, not after the sleep
elif [[ -t 0 ]]; then
    read -r -p "== press Enter to clear the condition (a SIGHUP reload with an unreachable threshold) "
else
    die "stdin is not a terminal: give a DURATION"
fi

echo "== clearing: each agent reloads a config with load.1 >= 1000000"
t0=$SECONDS
for i in 0 1 2; do
    host=${HOSTS[$i]}
    agent_config "$host" ">= 1000000" "${agent_ports[$i]}" >"$work/$host.json"
    kill -HUP "${agent_pids[$i]}"
done
wait_until "[[ \$(count_hosts) == 0 ]]" 30 "resolution of the alerts in Alertmanager"
echo "  resolved in Alertmanager within $((SECONDS - t0)) s of the reloads"
echo "\$ amtool alert query --alertmanager.url=$am alertname=$RULE"
amtool alert query --alertmanager.url="$am" "alertname=$RULE"
for host in "${HOSTS[@]}"; do
    grep -h "config reloaded" "$work/$host.log" | tail -1 | sed "s/^/  $host: /"
done
echo "== done; stopping everything"
