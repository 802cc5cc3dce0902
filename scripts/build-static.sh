#!/usr/bin/env bash
# Builds a statically linked hostwatch (glibc, crt-static) and proves it: no dynamic
# dependencies, and `sample` runs. The static build leaves the `plugins` feature out:
# dlopen() from a static glibc binary is unsupported (it crashes), exec hooks still work.
# Usage: scripts/build-static.sh [extra cargo args]   Output: path of the binary on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
case "$target" in
  *-linux-gnu) ;;
  *) echo "build-static: only *-linux-gnu hosts are supported here (host is $target)" >&2; exit 1 ;;
esac
# TLS is rustls (ring): nothing but glibc's static archives is linked.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" --no-default-features \
  --features slack,teams,email,webhook,api,redis "$@" >&2
bin="target/$target/release/hostwatch"
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
  echo "build-static: $bin still needs shared libraries:" >&2
  readelf -d "$bin" | grep NEEDED >&2
  exit 1
fi
if readelf -l "$bin" | grep -q INTERP; then
  echo "build-static: $bin asks for a dynamic loader (PT_INTERP)" >&2
  exit 1
fi
"$bin" --version >&2
"$bin" --log-level warn sample --format json --over 200ms | python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert doc["metrics"].get("cpu.usage") is not None, "static sample lacks cpu.usage"
print("build-static: sample ok, %d series" % len(doc["metrics"]), file=sys.stderr)'
echo "$bin"
