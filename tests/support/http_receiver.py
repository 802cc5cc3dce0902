#!/usr/bin/env python3
"""A recording HTTP receiver for hostwatch's channel tests (loopback only).

Every request (method, path, query, headers, body) is recorded. Answers follow a script:
  POST /__script   body {"path": "/x" (optional, default any), "responses": [{"status": 429,
                   "body": "...", "headers": {"Retry-After": "1"}, "delay": 0.0}, ...]}
                   queues answers, used in order; when a queue is empty the default answers.
  POST /__default  body {"status": 200, "body": "ok", "headers": {}, "delay": 0} sets it.
  GET  /__requests the recorded requests as a JSON array.
  POST /__reset    clears requests, scripts and the default.
Started as: http_receiver.py PORT_FILE [PORT [CERT KEY]]; it binds 127.0.0.1 on PORT (0 or
absent: a free one), speaks HTTPS with CERT and KEY when given, and writes the port to
PORT_FILE.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"requests": [], "scripts": {}, "default": {"status": 200, "body": "ok"}}


def reset():
    STATE["requests"] = []
    STATE["scripts"] = {}
    STATE["default"] = {"status": 200, "body": "ok"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, headers=None, content_type="text/plain"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/__requests":
            with LOCK:
                data = json.dumps(STATE["requests"])
            return self._send(200, data, content_type="application/json")
        self._handle(b"")

    def do_POST(self):
        body = self._body()
        if self.path == "/__script":
            spec = json.loads(body)
            with LOCK:
                STATE["scripts"].setdefault(spec.get("path", "*"), []).extend(spec["responses"])
            return self._send(200, "scripted")
        if self.path == "/__default":
            with LOCK:
                STATE["default"] = json.loads(body)
            return self._send(200, "default set")
        if self.path == "/__reset":
            with LOCK:
                reset()
            return self._send(200, "reset")
        self._handle(body)

    def _handle(self, body):
        path, _, query = self.path.partition("?")
        with LOCK:
            queue = STATE["scripts"].get(path) or STATE["scripts"].get("*") or []
            answer = queue.pop(0) if queue else STATE["default"]
            text = body.decode("utf-8", "replace")
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            STATE["requests"].append({
                "t": time.time(), "method": self.command, "path": path, "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": text, "json": parsed, "answered": answer.get("status", 200),
            })
        if answer.get("delay"):
            time.sleep(float(answer["delay"]))
        self._send(answer.get("status", 200), answer.get("body", ""), answer.get("headers"),
                   answer.get("content_type", "text/plain"))


def main():
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    if len(sys.argv) > 4:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
