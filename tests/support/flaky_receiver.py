#!/usr/bin/env python3
"""A flaky, recording HTTP receiver for hostwatch's fault campaign (loopback only).

Two modes, switched at run time:
  POST /__default  body {"status": 200}  answers every request with that status (the start).
  POST /__flaky    body {"p_fail": 0.5, "p_hang": 0.1, "hang": 2.0, "seed": 1} answers each
                   request 500 with probability p_fail, or hangs `hang` seconds (longer than
                   the channel timeout) and closes the connection without an answer with
                   probability p_hang, else 200. Draws come from random.Random(seed), in the
                   order requests arrive.
  GET  /__requests every request so far as a JSON array of {"t", "method", "path", "body",
                   "json", "answered"}; "answered" is the status written (200, 500) or "hang".
                   A 200 is recorded only after the answer was written to the socket, so an
                   entry answered 200 is a request the receiver accepted.
Started as: flaky_receiver.py PORT_FILE; binds 127.0.0.1 on a free port and writes the port
to PORT_FILE (atomically).
"""
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {
    "requests": [],
    "mode": {"status": 200},
    "rng": random.Random(0),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, text, content_type="text/plain"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self):
        if self.path == "/__requests":
            with LOCK:
                data = json.dumps(STATE["requests"])
            return self._send(200, data, "application/json")
        self._send(404, "not found")

    def do_POST(self):
        body = self._body()
        if self.path == "/__default":
            spec = json.loads(body)
            with LOCK:
                STATE["mode"] = {"status": int(spec.get("status", 200))}
            return self._send(200, "default set")
        if self.path == "/__flaky":
            spec = json.loads(body)
            with LOCK:
                STATE["mode"] = {
                    "p_fail": float(spec.get("p_fail", 0.5)),
                    "p_hang": float(spec.get("p_hang", 0.1)),
                    "hang": float(spec.get("hang", 2.0)),
                }
                STATE["rng"] = random.Random(int(spec.get("seed", 0)))
            return self._send(200, "flaky set")
        self._handle(body)

    def _handle(self, body):
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        entry = {"t": time.time(), "method": self.command, "path": self.path, "body": text,
                 "json": parsed, "answered": None}
        with LOCK:
            mode = dict(STATE["mode"])
            draw = STATE["rng"].random() if "p_fail" in mode else None
            STATE["requests"].append(entry)
        if draw is None:
            status = mode["status"]
        elif draw < mode["p_fail"]:
            status = 500
        elif draw < mode["p_fail"] + mode["p_hang"]:
            time.sleep(mode["hang"])
            with LOCK:
                entry["answered"] = "hang"
            self.close_connection = True
            return
        else:
            status = 200
        try:
            self._send(status, "ok" if status == 200 else "flaky failure")
        except OSError:
            with LOCK:
                entry["answered"] = "write failed"
            return
        with LOCK:
            entry["answered"] = status


def main():
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
