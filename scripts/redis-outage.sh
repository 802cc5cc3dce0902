#!/usr/bin/env bash
# The Redis outage of issue 14 at its full length: tests/redis_state.rs's outage test with
# Redis down for 30 s (or $1 seconds) while reminders keep changing the state. CI runs the
# same test with a 10 s outage; nothing in the agent depends on the length (its retries
# back off to 5 s at most).
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTWATCH_TEST_REDIS_OUTAGE="${1:-30}" \
  cargo test --locked --test redis_state a_redis_outage_loses_nothing -- --nocapture
