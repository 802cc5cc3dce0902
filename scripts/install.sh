#!/usr/bin/env bash
# Installs hostwatch: the binary, /etc/hostwatch/config.json (never over an existing one: the
# new default then goes beside it as config.json.new), the systemd units, the man page, the
# bash/zsh/fish completions, the README, the state directory /var/lib/hostwatch and the
# system user `hostwatch`. Running it twice gives the same tree.
#
# Usage: scripts/install.sh [--binary PATH] [--prefix DIR] [--destdir DIR] [--uninstall [--purge]]
#   --binary PATH  the binary to install (default: target/release/hostwatch)
#   --prefix DIR   where bin/, lib/systemd/system/ and share/ go (default: /usr)
#   --destdir DIR  stage the tree under DIR, for a package (or DESTDIR=DIR in the environment):
#                  no user is created, nothing is chowned, systemd is not told
#   --uninstall    remove what this installs; keeps /etc/hostwatch/config.json, the state
#                  directory and the user
#   --purge        with --uninstall: remove those too
set -euo pipefail
cd "$(dirname "$0")/.."
# Directories made on the way (usr/share/zsh, …) must be readable by everyone.
umask 022

binary=target/release/hostwatch
prefix=/usr
destdir=${DESTDIR:-}
uninstall=0
purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?install.sh: --binary needs a path}; shift 2 ;;
    --prefix) prefix=${2:?install.sh: --prefix needs a directory}; shift 2 ;;
    --destdir) destdir=${2:?install.sh: --destdir needs a directory}; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$purge" = 1 ] && [ "$uninstall" = 0 ]; then
  echo "install.sh: --purge goes with --uninstall" >&2
  exit 2
fi
case "$prefix" in
  /*) prefix=${prefix%/} ;;
  *) echo "install.sh: --prefix must be an absolute path, not \"$prefix\"" >&2; exit 2 ;;
esac
if [ -n "$destdir" ]; then
  mkdir -p "$destdir"
  destdir=$(cd "$destdir" && pwd)
fi

user=hostwatch
bin_dir=$destdir$prefix/bin
unit_dir=$destdir$prefix/lib/systemd/system
man_dir=$destdir$prefix/share/man/man1
doc_dir=$destdir$prefix/share/doc/hostwatch
bash_dir=$destdir$prefix/share/bash-completion/completions
zsh_dir=$destdir$prefix/share/zsh/vendor-completions
fish_dir=$destdir$prefix/share/fish/vendor_completions.d
conf_dir=$destdir/etc/hostwatch
state_dir=$destdir/var/lib/hostwatch
units=(hostwatch.service hostwatch-once.service hostwatch-once.timer)
# Every file this installs, but for the config and the state directory.
files=("$bin_dir/hostwatch" "$man_dir/hostwatch.1" "$doc_dir/README.md" "$doc_dir/config.example.json"
  "$doc_dir/config.example.yaml" "$bash_dir/hostwatch"
  "$zsh_dir/_hostwatch" "$fish_dir/hostwatch.fish")
for u in "${units[@]}"; do files+=("$unit_dir/$u"); done

# systemd is the init system running here (sd_booted(3)), and this is no staging tree.
systemd_running() { [ -z "$destdir" ] && [ -d /run/systemd/system ]; }

# Removes DIR and then its parents while they are empty, never DESTDIR itself; outside a
# staging tree only the directories that are hostwatch's own.
prune() {
  local dir=$1
  if [ -z "$destdir" ]; then
    rmdir "$dir" 2>/dev/null || true
    return
  fi
  while [ "$dir" != "$destdir" ] && [ "${dir#"$destdir"/}" != "$dir" ] && rmdir "$dir" 2>/dev/null; do
    dir=$(dirname "$dir")
  done
}

if [ "$uninstall" = 1 ]; then
  if systemd_running; then
    systemctl disable --now hostwatch.service hostwatch-once.timer >/dev/null 2>&1 || true
  fi
  rm -f "${files[@]}" "$conf_dir/config.json.new"
  if [ "$purge" = 1 ]; then
    rm -f "$conf_dir/config.json"
    rm -rf "$state_dir"
    if [ -z "$destdir" ] && getent passwd "$user" >/dev/null; then
      userdel "$user"
    fi
  fi
  for f in "${files[@]}"; do prune "$(dirname "$f")"; done
  prune "$conf_dir"
  prune "$(dirname "$state_dir")"
  if systemd_running; then systemctl daemon-reload; fi
  if [ "$purge" = 1 ]; then
    echo "install.sh: removed hostwatch, its config and its state"
  else
    echo "install.sh: removed hostwatch; kept /etc/hostwatch/config.json, /var/lib/hostwatch and the user $user (--purge removes them)"
  fi
  exit 0
fi

if [ ! -x "$binary" ]; then
  echo "install.sh: $binary: no such executable (build it with cargo build --release, or pass --binary PATH)" >&2
  exit 1
fi

if [ -z "$destdir" ]; then
  if ! getent passwd "$user" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/hostwatch \
      --shell /usr/sbin/nologin --comment "hostwatch host monitor" "$user"
    echo "install.sh: created the system user $user"
  fi
else
  echo "install.sh: DESTDIR set: the user $user is not created (a package's postinst does it)"
fi

install -D -m 0755 "$binary" "$bin_dir/hostwatch"
install -D -m 0644 packaging/man/hostwatch.1 "$man_dir/hostwatch.1"
install -D -m 0644 README.md "$doc_dir/README.md"
install -D -m 0644 config.json "$doc_dir/config.example.json"
install -D -m 0644 config.yaml "$doc_dir/config.example.yaml"
install -D -m 0644 packaging/completions/hostwatch.bash "$bash_dir/hostwatch"
install -D -m 0644 packaging/completions/_hostwatch "$zsh_dir/_hostwatch"
install -D -m 0644 packaging/completions/hostwatch.fish "$fish_dir/hostwatch.fish"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for u in "${units[@]}"; do
  # The units name /usr/bin/hostwatch; another prefix gets its own path.
  sed "s|/usr/bin/hostwatch|$prefix/bin/hostwatch|g" "packaging/systemd/$u" >"$tmp/$u"
  install -D -m 0644 "$tmp/$u" "$unit_dir/$u"
done

# The config may hold secrets: readable by root and the service's group only.
install -d -m 0755 "$conf_dir"
if [ -z "$destdir" ]; then conf_group=(-g "$user"); else conf_group=(); fi
# The starter config (packaging/config.json: the default rules, notifications in the log
# only) passes `hostwatch check` on any host; the repository's config.json, which shows every
# key, goes to the doc directory as config.example.json (and .yaml).
if [ ! -e "$conf_dir/config.json" ]; then
  install -m 0640 "${conf_group[@]}" packaging/config.json "$conf_dir/config.json"
elif cmp -s packaging/config.json "$conf_dir/config.json"; then
  rm -f "$conf_dir/config.json.new"
else
  install -m 0640 "${conf_group[@]}" packaging/config.json "$conf_dir/config.json.new"
  echo "install.sh: kept your /etc/hostwatch/config.json; the new default is /etc/hostwatch/config.json.new"
fi

install -d -m 0750 "$state_dir"
if [ -z "$destdir" ]; then chown "$user:$user" "$state_dir"; fi

if systemd_running; then
  systemctl daemon-reload
  echo "install.sh: installed; start with: systemctl enable --now hostwatch (edit /etc/hostwatch/config.json first; hostwatch check validates it)"
else
  echo "install.sh: installed under ${destdir:-/} with prefix $prefix"
fi
