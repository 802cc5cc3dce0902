#!/usr/bin/env bash
# Smoke test of the static binary (scripts/build-static.sh): `sample` and `once` run, a webhook
# alert is delivered over HTTPS to a local receiver whose certificate a test CA signed (made
# here with openssl, trusted through SSL_CERT_FILE), and `check` refuses a plugin channel with
# the reason. Needs openssl and python3.
# Usage: scripts/static-smoke.sh [BINARY]   (default: the path build-static.sh prints)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/$(rustc -vV | sed -n 's/^host: //p')/static/hostwatch}
fail() { echo "static-smoke: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "$bin is not an executable (run scripts/build-static.sh first)"
command -v openssl >/dev/null || fail "openssl is missing (apt-get install openssl)"
work=$(mktemp -d)
receiver=
trap '[ -n "$receiver" ] && kill "$receiver" 2>/dev/null; rm -rf "$work"' EXIT

# 1. sample: every core metric has a value.
"$bin" --log-level warn sample --format json --over 200ms >"$work/sample.json"
python3 - "$work/sample.json" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))["metrics"]
for name in ("cpu.usage", "mem.used_percent", "load.1", "disk.used_percent{mount=/}"):
    assert metrics.get(name) is not None, "static sample lacks " + name
PY

# 2. A test CA and a certificate for 127.0.0.1 it signed.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=hostwatch smoke CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null

# 3. An HTTPS receiver that records each POST body (one file per request) and answers 200.
cat >"$work/receiver.py" <<'PY'
import http.server, ssl, sys
work = sys.argv[1]
count = 0
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        count += 1
        with open("%s/post-%d.json" % (work, count), "wb") as f:
            f.write(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain("%s/server.pem" % work, "%s/server.key" % work)
server.socket = tls.wrap_socket(server.socket, server_side=True)
with open("%s/port.tmp" % work, "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename("%s/port.tmp" % work, "%s/port" % work)
server.serve_forever()
PY
python3 "$work/receiver.py" "$work" &
receiver=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || fail "the HTTPS receiver did not start"
port=$(cat "$work/port")

# 4. once: a rule that always fires, routed to a webhook at https://127.0.0.1:PORT.
cat >"$work/config.json" <<JSON
{"host": "smoke", "state_dir": "$work/state",
 "rules": [{"name": "smoke_always", "metric": "mem.used_percent", "crit": ">= 0"}],
 "channels": {"hook": {"type": "webhook", "url": "https://127.0.0.1:$port/hook", "timeout": "5s"}},
 "routes": [{"channels": ["hook"]}]}
JSON
rc=0
SSL_CERT_FILE="$work/ca.pem" "$bin" --log-level warn once --config "$work/config.json" \
  --format json >"$work/once.json" || rc=$?
[ "$rc" = 2 ] || fail "once exited $rc, expected 2 (CRITICAL): $(cat "$work/once.json")"
[ -s "$work/post-1.json" ] || fail "the HTTPS receiver got no POST from once"
python3 - "$work/post-1.json" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
assert event["rule"] == "smoke_always", event
assert event["event"] == "firing" and event["severity"] == "critical", event
assert event["host"] == "smoke" and event["key"], event
PY

# 5. Without the test CA the same delivery is refused (the CA is what made step 4 work).
cat >"$work/config2.json" <<JSON
{"host": "smoke", "state_dir": "$work/state2",
 "rules": [{"name": "smoke_always", "metric": "mem.used_percent", "crit": ">= 0"}],
 "channels": {"hook": {"type": "webhook", "url": "https://127.0.0.1:$port/hook", "timeout": "5s"}},
 "routes": [{"channels": ["hook"]}], "delivery": {"timeout": "1s"}}
JSON
SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$bin" --log-level warn once \
  --config "$work/config2.json" >/dev/null 2>"$work/untrusted.err" || true
[ ! -e "$work/post-2.json" ] || fail "a delivery went through without trusting the test CA"
grep -q "invalid peer certificate: UnknownIssuer" "$work/untrusted.err" \
  || fail "an untrusted certificate was not the reason given: $(cat "$work/untrusted.err")"

# 6. A plugin channel: refused by check with the reason.
cat >"$work/plugin.json" <<JSON
{"state_dir": "$work/state3", "channels": {"p": {"type": "plugin", "path": "/nonexistent.so"}}}
JSON
rc=0
"$bin" check --config "$work/plugin.json" >/dev/null 2>"$work/check.err" || rc=$?
[ "$rc" = 2 ] || fail "check of a plugin channel exited $rc, expected 2"
grep -q "built without plugin support (a static build cannot load shared libraries)" \
  "$work/check.err" || fail "check did not give the plugin refusal's reason: $(cat "$work/check.err")"

echo "static-smoke: ok (sample, once, HTTPS webhook with a test CA, plugin refused): $bin" >&2
