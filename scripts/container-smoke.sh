#!/usr/bin/env bash
# Smoke test of the container image (packaging/container/Containerfile): builds it with podman
# from the static binary (scripts/build-static.sh first), exports the root filesystem of a
# container made from it (`podman create` + `podman export`: the bytes `docker run` would
# start) and runs `hostwatch sample` and `once` from it under chroot, in a private mount
# namespace, with /proc mounted and the host's / bind-mounted read-only at /host, as the README
# tells a container to run. `podman run` itself does not work on the CI machine (cgroup mode).
# Checks: the image holds the binary and the CA bundle only; without `collect.root` mounts read
# as the container sees them (its own /, its volume, /host...); with "root": "/host" they read
# as the host names them, with the host's figures, and the container's own are left out; `once` runs on the embedded default config from a read-only image
# (docker run --read-only) and keeps its state in /var/lib/hostwatch (the image's VOLUME, a
# writable mount here). Needs root, podman, unshare, python3.
# Usage: scripts/container-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "container-smoke: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (mounts, chroot, rootful podman)"
command -v podman >/dev/null || fail "podman is missing (apt-get install podman)"
[ -f /etc/ssl/certs/ca-certificates.crt ] \
  || fail "no /etc/ssl/certs/ca-certificates.crt to put in the image (apt-get install ca-certificates)"
target=$(rustc -vV | sed -n 's/^host: //p')
bin=target/$target/static/hostwatch
[ -x "$bin" ] || fail "$bin is missing: run scripts/build-static.sh first"
started=$(date +%s.%N)
work=$(mktemp -d /tmp/hostwatch-container.XXXXXX)
image=localhost/hostwatch-smoke:$$
ctr=
cleanup() {
  [ -n "$ctr" ] && podman rm -f "$ctr" >/dev/null 2>&1
  podman rmi -f "$image" >/dev/null 2>&1
  # The mounts lived in the private namespace, gone with it; -xdev would refuse to cross one.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

podman build -q --layers=false -f packaging/container/Containerfile --build-context certs=/etc/ssl/certs \
  --build-arg TARGET="$target" -t "$image" . >/dev/null
ctr=$(podman create "$image")
podman export "$ctr" -o "$work/rootfs.tar"
built=$(date +%s.%N)
root=$work/rootfs
mkdir "$root"
tar -xf "$work/rootfs.tar" -C "$root"
files=$(cd "$root" && find . -type f | sort | tr '\n' ' ')
[ "$files" = "./etc/ssl/certs/ca-certificates.crt ./hostwatch " ] \
  || fail "the image holds other files than the binary and the CA bundle: $files"
cmp -s "$root/hostwatch" "$bin" || fail "the image's /hostwatch is not $bin"

# A mount of the host below / (another directory bound there: a directory bound onto itself
# is what systemd's sandbox adds, left out by default), to be named as the host names it.
data=$work/data
mkdir "$data" "$work/data-src" "$root/etc/hostwatch"
printf '{"collect": {"root": "/host"}}\n' >"$root/etc/hostwatch/host.json"

unshare --mount --propagation private -- bash -s "$root" "$data" "$work" <<'INNER'
set -euo pipefail
root=$1 data=$2 work=$3
mkdir -p "$root/proc" "$root/host" "$root/var/lib/hostwatch" "$work/state"
trap 'umount -R "$root" 2>/dev/null; umount "$data" 2>/dev/null' EXIT
mount --bind "$root" "$root"          # the image read-only (docker run --read-only),
mount -o remount,bind,ro "$root"
mount --bind "$work/state" "$root/var/lib/hostwatch" # but for its VOLUME
mount --bind "$work/data-src" "$data"
mount --bind / "$root/host"          # what -v /:/host:ro,rslave gives: the host's /,
mount -o remount,bind,ro "$root/host"
mount --bind "$data" "$root/host$data" # and a mount below it, where the host has one
mount -t proc proc "$root/proc"        # the host's processes, as with --pid=host
hw() { chroot "$root" /hostwatch --log-level warn "$@"; }
hw sample --format json --over 200ms >"$work/sample-plain.json"
hw --config /etc/hostwatch/host.json sample --format json --over 200ms >"$work/sample-root.json"
python3 -c 'import os, json, sys; s = os.statvfs("/"); json.dump([s.f_blocks, s.f_bfree, s.f_bavail], sys.stdout)' >"$work/statvfs.json"
rc=0; hw once --format json >"$work/once.json" || rc=$?
echo "$rc" >"$work/once.rc"
rc=0; hw --config /etc/hostwatch/host.json once --format json >"$work/once-root.json" || rc=$?
echo "$rc" >"$work/once-root.rc"
INNER

python3 - "$work" "$data" <<'PY'
import json, sys
work, data = sys.argv[1], sys.argv[2]
def mounts(name):
    metrics = json.load(open("%s/%s" % (work, name)))["metrics"]
    assert metrics.get("cpu.usage") is not None, name + ": no cpu.usage"
    assert metrics.get("load.1") is not None, name + ": no load.1"
    prefix = "disk.used_percent{mount="
    return {k[len(prefix):-1]: v for k, v in metrics.items() if k.startswith(prefix)}
plain = mounts("sample-plain.json")
# Without collect.root: the container's own mounts (its / and its VOLUME), the host's under /host.
assert {"/", "/host", "/var/lib/hostwatch"} <= set(plain), "without collect.root: %s" % sorted(plain)
rooted = mounts("sample-root.json")
assert sorted(rooted) == sorted(["/", data]), "with collect.root /host: %s" % sorted(rooted)
blocks, bfree, bavail = json.load(open(work + "/statvfs.json"))
host = 100.0 * (blocks - bfree) / (blocks - bfree + bavail)
assert abs(rooted["/"] - host) < 0.5, "disk.used_percent{mount=/} %s, the host's / %s" % (rooted["/"], host)
codes = []
for name in ("once", "once-root"):
    rc = int(open("%s/%s.rc" % (work, name)).read())
    assert rc in (0, 1, 2), "%s exited %d (3 is UNKNOWN)" % (name, rc)
    json.load(open("%s/%s.json" % (work, name)))
    codes.append(rc)
print("container-smoke: / used %.2f%% in the image, %.2f%% on the host; mounts %s; once exited %s"
      % (rooted["/"], host, sorted(rooted), codes), file=sys.stderr)
PY
[ -n "$(ls -A "$work/state" 2>/dev/null)" ] \
  || fail "once left no state in /var/lib/hostwatch (the image's VOLUME)"
done_at=$(date +%s.%N)
awk -v a="$started" -v b="$built" -v c="$done_at" 'BEGIN {
  printf "container-smoke: ok: image built and exported in %.1f s, checks in %.1f s\n", b - a, c - b }' >&2
