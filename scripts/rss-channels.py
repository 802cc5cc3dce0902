#!/usr/bin/env python3
"""RSS (VmRSS) of `hostwatch run` at a 1 s interval: steady state, and after one channel of
each type has sent once (Slack, Teams, webhook, Alertmanager against tests/support/
http_receiver.py; webhook over HTTPS with a test CA; e-mail against smtp_server.py).
Usage: scripts/rss-channels.py BINARY   (python3 with aiosmtpd, and the openssl command)"""
import json, os, subprocess, sys, tempfile, time, urllib.request
BIN = sys.argv[1]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"):
            return int(l.split()[1])
def wait_file(p, t=20):
    end = time.time() + t
    while time.time() < end:
        try:
            v = open(p).read().strip()
            if v: return v
        except FileNotFoundError: pass
        time.sleep(0.05)
    raise SystemExit("timeout " + p)
tmp = tempfile.mkdtemp(prefix="hw-rss-")
certs = os.path.join(tmp, "certs")
subprocess.run(["python3", f"{REPO}/tests/support/smtp_server.py", "make-certs", certs], check=True, capture_output=True)
recv = subprocess.Popen(["python3", f"{REPO}/tests/support/http_receiver.py", f"{tmp}/rport", "0"], stdout=subprocess.DEVNULL)
trecv = subprocess.Popen(["python3", f"{REPO}/tests/support/http_receiver.py", f"{tmp}/tport", "0", f"{certs}/server.pem", f"{certs}/server.key"], stdout=subprocess.DEVNULL)
smtp = subprocess.Popen(["python3", f"{REPO}/tests/support/smtp_server.py", "serve", "--port-file", f"{tmp}/sport", "--out", f"{tmp}/mail.jsonl"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rp, tp, sp = (int(wait_file(f"{tmp}/{n}")) for n in ("rport", "tport", "sport"))
import ssl
CTX = ssl.create_default_context(cafile=f"{certs}/ca.pem")
def count(port=rp):
    scheme = "https://localhost" if port == tp else "http://127.0.0.1"
    return len(json.load(urllib.request.urlopen(f"{scheme}:{port}/__requests", context=CTX)))
def mails():
    try: return len(open(f"{tmp}/mail.jsonl").read().splitlines())
    except FileNotFoundError: return 0
base = f"http://127.0.0.1:{rp}"
cases = [
    ("steady (no channel sends)", None, None),
    ("slack", {"type": "slack", "webhook_url": f"{base}/slack"}, count),
    ("teams", {"type": "teams", "webhook_url": f"{base}/teams"}, count),
    ("webhook", {"type": "webhook", "url": f"{base}/hook"}, count),
    ("alertmanager", {"type": "alertmanager", "url": base}, count),
    ("webhook https", {"type": "webhook", "url": f"https://localhost:{tp}/hook"}, lambda: count(tp)),
    ("email", {"type": "email", "server": f"127.0.0.1:{sp}", "tls": "none", "from": "a@example.com", "to": ["b@example.com"]}, mails),
]
env = dict(os.environ, SSL_CERT_FILE=f"{certs}/ca.pem")
import atexit
import shutil
atexit.register(lambda: ([c.terminate() for c in (recv, trecv, smtp)], shutil.rmtree(tmp, ignore_errors=True)))
for name, chan, sent in cases:
    d = tempfile.mkdtemp(dir=tmp)
    cfg = {"host": "rss", "interval": "1s", "state_dir": f"{d}/state",
           "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0" if chan else "> 100"}],
           "escalation": {"remind_every": "1h"}}
    if chan:
        cfg["channels"] = {"c": chan}; cfg["routes"] = [{"channels": ["c"]}]
    open(f"{d}/c.json", "w").write(json.dumps(cfg))
    before = sent() if sent else 0
    p = subprocess.Popen([BIN, "--log-level", "warn", "run", "--config", f"{d}/c.json"], env=env, stdout=subprocess.DEVNULL, stderr=open(f"{d}/err", "w"))
    if sent:
        end = time.time() + 30
        while sent() <= before and time.time() < end: time.sleep(0.1)
        ok = sent() > before
        time.sleep(3)
    else:
        time.sleep(10); ok = True
    print(f"{name:28s} VmRSS {rss(p.pid):6d} kB  {('sent' if sent else 'after 10 s') if ok else 'NOT SENT: ' + open(f'{d}/err').read()[-300:]}")
    p.terminate(); p.wait()
