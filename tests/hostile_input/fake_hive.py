#!/usr/bin/env python3
"""A stand-in for rbee-hive that answers like a hostile or broken one, for the CLI's tests.

    fake_hive.py --mode escape|types --port-file FILE

escape: every string carries terminal control sequences (OSC window title, CSI colours and
        screen clears, BEL, a C1 CSI, bidi overrides), in plain GETs, narration, results, the
        [ERROR] message and worker logs.
types:  the right routes with the wrong JSON types (numbers for strings, a string for a list,
        lists of numbers for lists of objects).
"""
import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\u009b1m\u202eevil\x7f\x01"

ESCAPE = {
    "info": {"hive_id": "hive" + EVIL, "version": "v" + EVIL, "hostname": "node" + EVIL,
             "uptime_s": 5, "auth_required": False, "catalog": "cat" + EVIL,
             "paths": {"home": "/h" + EVIL, "plugins": "/p" + EVIL}},
    "capabilities": {"devices": [{"id": "GPU-0" + EVIL, "backend": "cuda" + EVIL,
                                  "name": "dev" + EVIL, "memory_total_bytes": 1 << 30,
                                  "cpuset": "0-3" + EVIL, "pci_bus_id": "00:01" + EVIL}]},
    "backends": {"backends": [{"name": "cpu" + EVIL, "version": "1" + EVIL,
                               "state": "available" + EVIL, "score": 1, "devices": [],
                               "reason": "why" + EVIL}]},
}
ESCAPE_RESULTS = {
    "model_list": {"models": [{"id": "org/m" + EVIL, "status": "ready" + EVIL, "size": 1,
                               "quantization": "Q4" + EVIL, "added_at": "2026" + EVIL}]},
    "model_get": {"id": "org/m" + EVIL, "name": "n" + EVIL, "path": "/p" + EVIL, "size": 1,
                  "format": "gguf", "architecture": "a" + EVIL},
    "worker_catalog_list": {"workers": [{"id": "w" + EVIL, "worker_type": "cpu" + EVIL,
                                         "version": "1" + EVIL, "platforms": ["linux" + EVIL],
                                         "architectures": ["x86_64" + EVIL],
                                         "description": "desc" + EVIL}]},
    "worker_list_installed": {"workers": [{"id": "w" + EVIL, "version": "1",
                                           "error": "broken" + EVIL}]},
    "worker_installed_get": {"id": "w" + EVIL, "version": "1" + EVIL, "binary_path": "/b" + EVIL,
                             "verify": {"ok": False, "checks": [{"check": "c" + EVIL,
                                                                 "ok": False,
                                                                 "detail": "d" + EVIL}]}},
    "worker_process_list": {"workers": [{"worker_id": "w" + EVIL, "pid": 1, "state": "s" + EVIL,
                                         "model": "m" + EVIL, "backend": "cpu" + EVIL}]},
    "hive_check": {"hive_id": "h" + EVIL, "version": "v" + EVIL, "ok": True,
                   "backends": [{"name": "cpu" + EVIL, "state": "available", "reason": "r" + EVIL}],
                   "cache": {"writable": False, "error": "e" + EVIL},
                   "catalog": {"reachable": False, "source": "s" + EVIL, "error": "e" + EVIL}},
}

TYPES = {
    "info": {"hive_id": 5, "version": ["x"], "uptime_s": "long", "paths": "nowhere",
             "auth_required": "yes"},
    "capabilities": {"devices": {"GPU-0": 1}},
    "backends": {"backends": [{"name": 5, "version": 1.5, "state": ["a"], "score": "high",
                               "devices": "none", "reason": {"a": 1}}, 7]},
}
TYPES_RESULTS = {
    "model_list": {"models": [5, {"id": 7, "size": "big", "status": True}]},
    "model_get": {"id": 1, "size": "x", "sha256_verified": "yes", "format": 3},
    "worker_catalog_list": {"workers": [{"id": ["x"], "platforms": [1, None], "version": 2}]},
    "worker_list_installed": {"workers": "none"},
    "worker_installed_get": {"id": 3, "verify": [1, 2]},
    "worker_process_list": {"workers": 3},
    "hive_check": {"backends": {"x": 1}, "cache": 5, "catalog": [], "ok": "true"},
}


class Hive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    jobs = {}

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urlsplit(self.path).path
        mode = self.server.mode
        table = ESCAPE if mode == "escape" else TYPES
        if path == "/health":
            return self.reply(200, "ok", "text/plain")
        if path.startswith("/v1/") and path[4:] in table:
            return self.reply(200, json.dumps(table[path[4:]]))
        if path.startswith("/v1/workers/") and path.endswith("/logs"):
            return self.reply(200, "line one" + EVIL + "\nline two\x1b[1A\x1b[2K\n", "text/plain")
        if path.startswith("/v1/jobs/") and path.endswith("/stream"):
            return self.stream(path.split("/")[3])
        self.reply(404, json.dumps({"error": "not found"}))

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        op = json.loads(self.rfile.read(n) or b"{}").get("operation", "")
        jid = "job-%d" % (len(Hive.jobs) + 1)
        Hive.jobs[jid] = op
        self.reply(201, json.dumps({"job_id": jid, "sse_url": "/v1/jobs/%s/stream" % jid}))

    def stream(self, jid):
        op = Hive.jobs.get(jid, "")
        mode = self.server.mode
        events = []
        if mode == "escape":
            events.append("data: narration" + EVIL)
            events.append("event: progress\ndata: " +
                          json.dumps({"stage": "stage" + EVIL, "bytes_done": 1, "bytes_total": 2}))
            if op in ESCAPE_RESULTS:
                events.append("event: data\ndata: " + json.dumps(ESCAPE_RESULTS[op]))
                events.append("data: [DONE]")
            else:
                events.append("data: [ERROR] failed" + EVIL)
        else:
            events.append("event: progress\ndata: " +
                          json.dumps({"stage": 5, "bytes_done": "1", "bytes_total": [2]}))
            events.append("event: data\ndata: " + json.dumps(TYPES_RESULTS.get(op, [1, 2, 3])))
            events.append("data: [DONE]")
        body = "".join("id: %d\n%s\n\n" % (i + 1, e) for i, e in enumerate(events))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["escape", "types"], required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hive)
    srv.daemon_threads = True
    srv.mode = args.mode
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
