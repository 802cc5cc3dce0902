#!/usr/bin/env bash
# Runs the fault campaign of tests/fault_campaign.rs longer than the test suite does: KILLS
# random `kill -9` (default 1000) with seed SEED (default 1), in release mode, figures printed.
# Needs root (the test mounts tmpfs file systems) and python3. Example:
#   KILLS=300 SEED=7 scripts/fault-campaign.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export KILLS="${KILLS:-1000}" SEED="${SEED:-1}"
echo "fault campaign: KILLS=$KILLS SEED=$SEED"
cargo test --release --test fault_campaign -- --nocapture --test-threads=1 "$@"
