#!/usr/bin/env bash
# Runs the whole test suite. Installs the real peers the tests talk to when they are missing
# (stress-ng from Debian, psutil from PyPI), then runs every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v stress-ng >/dev/null || need_apt+=(stress-ng)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "scripts/test.sh: missing ${need_apt[*]}; install with: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
fi
python3 -c 'import psutil' 2>/dev/null || python3 -m pip install -q psutil
cargo test --all-targets "$@"
