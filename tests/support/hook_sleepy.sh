#!/bin/sh
# Test exec hook that overstays its timeout: starts a grandchild `sleep` (its pid goes to the
# file "$1"), then sleeps itself. The timeout must kill both: the whole process group.
# Used by tests/exec_hook.rs.
sleep 300 &
echo $! > "$1.tmp" && mv "$1.tmp" "$1"
sleep 300
