#!/usr/bin/env bash
# The TLS black hole of tests/tls_blackhole.rs, run longer: a receiver that accepts TCP and
# never answers the handshake, `hostwatch run` retrying against it with a 500 ms timeout;
# threads and fds of the daemon must stay flat. Prints the figures.
# Usage: scripts/tls-blackhole.sh [seconds]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTWATCH_BLACKHOLE_SECS="${1:-300}" \
  cargo test --locked --test tls_blackhole -- --nocapture --test-threads 1
