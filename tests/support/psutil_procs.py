#!/usr/bin/env python3
"""Independent reader for tests/processes.rs: what psutil sees of hostwatch's process groups.

Usage: psutil_procs.py GROUPS_JSON [EXCLUDE_PID...]
GROUPS_JSON is collect.processes as hostwatch reads it; prints {"name": {"count", "rss",
"fds"}} per group, counting processes as hostwatch documents it: zombies left out, comm
compared exactly, cmdline as the arguments joined by spaces matched with a shell glob, the
pidfile's pid if it runs. Exits 3 with a message on stderr when psutil is not installed.
"""
import fnmatch
import json
import os
import sys

try:
    import psutil
except ImportError:
    sys.stderr.write("psutil is missing: install it with `python3 -m pip install psutil`\n")
    sys.exit(3)


def members(group, procs):
    if "pidfile" in group:
        try:
            with open(group["pidfile"]) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return []
        return [p for p in procs if p.pid == pid]
    if "comm" in group:
        # psutil's name() may lengthen a 15-byte comm from the command line; read comm itself.
        def comm(p):
            try:
                with open(f"/proc/{p.pid}/comm") as f:
                    return f.read().rstrip("\n")
            except OSError:
                return None
        return [p for p in procs if comm(p) == group["comm"]]
    pattern = group["cmdline"]
    return [p for p in procs if p.info["cmdline"] and fnmatch.fnmatchcase(" ".join(p.info["cmdline"]), pattern)]


def main():
    groups = json.loads(sys.argv[1])
    exclude = {int(a) for a in sys.argv[2:]} | {os.getpid()}
    procs = [
        p for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE and p.pid not in exclude
    ]
    out = {}
    for g in groups:
        count = rss = fds = 0
        for p in members(g, procs):
            try:
                r, n = p.memory_info().rss, p.num_fds()
            except psutil.Error:
                continue
            count, rss, fds = count + 1, rss + r, fds + n
        out[g["name"]] = {"count": count, "rss": rss, "fds": fds}
    json.dump(out, sys.stdout)


main()
