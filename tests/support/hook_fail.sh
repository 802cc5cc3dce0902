#!/bin/sh
# Test exec hook: prints eight numbered lines on stderr and exits with "$1".
# Used by tests/exec_hook.rs.
for i in 1 2 3 4 5 6 7 8; do
  echo "stderr line $i" >&2
done
exit "$1"
