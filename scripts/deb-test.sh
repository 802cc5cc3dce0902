#!/usr/bin/env bash
# Builds the .deb with cargo-deb (the default dynamic release build: every channel, plugins
# load) and proves it on this machine: dpkg -i installs the documented files, enables (does
# not start) hostwatch.service, creates the user; /usr/bin/hostwatch runs; `man hostwatch`
# renders; dpkg -r keeps the conffile; dpkg -P removes it and the state directory.
# Needs root and installs into the real / (CI's machine is thrown away; a user created here
# is removed again). Installs cargo-deb (crates.io, --locked) when missing.
# Usage: scripts/deb-test.sh   Output: path of the .deb on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "deb-test: needs root (it runs dpkg -i on this machine)" >&2
  exit 1
fi
if dpkg-query -W -f '${Status}' hostwatch 2>/dev/null | grep -q 'installed'; then
  echo "deb-test: a hostwatch package is installed here already; not touching it" >&2
  exit 1
fi
fail() { echo "deb-test: $*" >&2; exit 1; }
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --version 3.8.0 >&2
command -v man >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db >/dev/null
}

start=$(date +%s)
deb=$(cargo deb --locked | tail -n 1)
[ -f "$deb" ] || fail "cargo deb gave no package (\"$deb\")"
echo "deb-test: built $deb ($(stat -c %s "$deb") bytes) in $(($(date +%s) - start)) s" >&2

had_user=0
getent passwd hostwatch >/dev/null && had_user=1
cleanup() {
  dpkg -P hostwatch >/dev/null 2>&1 || true
  if [ "$had_user" = 0 ] && getent passwd hostwatch >/dev/null; then userdel hostwatch; fi
}
trap cleanup EXIT

dpkg -i "$deb" >&2
for f in /usr/bin/hostwatch /etc/hostwatch/config.json /usr/lib/systemd/system/hostwatch.service \
  /usr/lib/systemd/system/hostwatch-once.service /usr/lib/systemd/system/hostwatch-once.timer \
  /usr/share/man/man1/hostwatch.1.gz /usr/share/bash-completion/completions/hostwatch \
  /usr/share/zsh/vendor-completions/_hostwatch /usr/share/fish/vendor_completions.d/hostwatch.fish \
  /usr/share/doc/hostwatch/README.md /usr/share/doc/hostwatch/config.example.json \
  /usr/share/doc/hostwatch/config.example.yaml; do
  [ -f "$f" ] || fail "dpkg -i did not install $f"
done
# The installed config passes the unit's ExecStartPre, run as the unit's user: the service
# starts as installed.
setpriv --reuid=hostwatch --regid=hostwatch --clear-groups /usr/bin/hostwatch check >/dev/null \
  || fail "the installed /etc/hostwatch/config.json fails 'hostwatch check' as user hostwatch"
[ "$(stat -c '%a %U:%G' /etc/hostwatch/config.json)" = "640 root:hostwatch" ] \
  || fail "/etc/hostwatch/config.json is $(stat -c '%a %U:%G' /etc/hostwatch/config.json), not 640 root:hostwatch"
[ "$(stat -c '%a %U:%G' /var/lib/hostwatch)" = "750 hostwatch:hostwatch" ] \
  || fail "/var/lib/hostwatch is $(stat -c '%a %U:%G' /var/lib/hostwatch), not 750 hostwatch:hostwatch"
getent passwd hostwatch | grep -q ':/usr/sbin/nologin$' || fail "no system user hostwatch with nologin"
dpkg-query -W -f '${Conffiles}\n' hostwatch | grep -q '/etc/hostwatch/config.json' \
  || fail "/etc/hostwatch/config.json is not a conffile"
[ -L /etc/systemd/system/multi-user.target.wants/hostwatch.service ] || fail "hostwatch.service is not enabled"
[ ! -e /etc/systemd/system/timers.target.wants/hostwatch-once.timer ] || fail "hostwatch-once.timer was enabled"
/usr/bin/hostwatch --version >&2
/usr/bin/hostwatch --version | grep -q 'features: .*plugins' || fail "the packaged binary has no plugins feature"
cmp -s <(/usr/bin/hostwatch completions bash) /usr/share/bash-completion/completions/hostwatch \
  || fail "the packaged bash completions differ from the binary's"
page=$(MANWIDTH=80 man hostwatch 2>&1) || fail "man hostwatch failed: $page"
grep -q 'EXIT STATUS' <<<"$page" || fail "man hostwatch lacks EXIT STATUS"
warn=$(MANWIDTH=80 man -l /usr/share/man/man1/hostwatch.1.gz 2>&1 >/dev/null) || fail "man -l failed"
[ -z "$warn" ] || fail "man -l warned: $warn"

dpkg -r hostwatch >&2
[ ! -e /usr/bin/hostwatch ] || fail "dpkg -r left /usr/bin/hostwatch"
[ -f /etc/hostwatch/config.json ] || fail "dpkg -r removed the conffile"
dpkg -P hostwatch >&2
[ ! -e /etc/hostwatch ] || fail "dpkg -P left /etc/hostwatch"
[ ! -e /var/lib/hostwatch ] || fail "dpkg -P left /var/lib/hostwatch"
[ ! -e /etc/systemd/system/multi-user.target.wants/hostwatch.service ] || fail "dpkg -P left the unit enabled"
echo "deb-test: dpkg -i, -r and -P ok" >&2
echo "$deb"
