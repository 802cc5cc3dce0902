#!/usr/bin/env python3
"""Independent reader for tests/sample_accuracy.rs: prints, as one JSON object, what psutil
sees at this moment (memory, swap, load, the physical partitions and the space of each mount).

Usage: psutil_snapshot.py [MOUNT...]   space of each MOUNT (default: every physical partition)
Exits 3 with a message on stderr when psutil is not installed.
"""
import json
import os
import sys

try:
    import psutil
except ImportError:
    sys.stderr.write("psutil is missing: install it with `python3 -m pip install psutil`\n")
    sys.exit(3)


def main():
    vm = psutil.virtual_memory()
    sw = psutil.swap_memory()
    partitions = [
        {"mountpoint": p.mountpoint, "fstype": p.fstype, "device": p.device}
        for p in psutil.disk_partitions(all=False)
    ]
    space = {}
    for mount in sys.argv[1:] or [p["mountpoint"] for p in partitions]:
        try:
            u = psutil.disk_usage(mount)
            # used = (f_blocks - f_bfree) * f_frsize, free = f_bavail * f_frsize
            space[mount] = {"total": u.total, "used": u.used, "free": u.free, "percent": u.percent}
        except OSError as e:
            space[mount] = {"error": str(e)}
    print(json.dumps({
        "psutil": psutil.__version__,
        "memory": {"total": vm.total, "available": vm.available, "percent": vm.percent},
        "swap": {"total": sw.total, "used": sw.used, "percent": sw.percent},
        "load": list(os.getloadavg()),
        "cpu_count": psutil.cpu_count(),
        "partitions": partitions,
        "space": space,
    }))


if __name__ == "__main__":
    main()
