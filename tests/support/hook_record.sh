#!/bin/sh
# Test exec hook: records what it was given into the directory "$1" (argv NUL-separated in
# argv, the environment as `env -0` in env, stdin verbatim in stdin, the working directory in
# cwd), says "recorded" on stdout and exits with "$2" (default 0). Used by tests/exec_hook.rs.
# Every alert value is only ever expanded inside double quotes or read by env: nothing in it
# is evaluated.
dir=$1
code=${2:-0}
printf '%s\0' "$@" > "$dir/argv"
env -0 > "$dir/env"
cat > "$dir/stdin"
pwd > "$dir/cwd"
echo recorded
exit "$code"
