#!/usr/bin/env python3
"""A local stand-in for the Hugging Face hub, for the model catalog's tests and benchmark.

    fake_hub.py --root DIR --port-file FILE [--log FILE] [--token T]

DIR holds <org>/<repo>/<files>. Routes, as the hub has them:
  GET /api/models/<org>/<repo>[?blobs=true]   {"id", "siblings": [{"rfilename", "size", "lfs"}]}
  GET /api/models/<org>/<repo>/tree/main      [{"type", "path", "size", "oid", "lfs"}]
  GET /<org>/<repo>/resolve/main/<file>       302 to /cdn/<org>/<repo>/<file> with
                                              X-Linked-Etag: "<sha256>" and X-Linked-Size
  GET /cdn/<org>/<repo>/<file>                the bytes; Range: bytes=N- and N-M (206), 416
                                              past the end; its ETag is not a sha256
Unknown repos and files are 404. Every request is logged to --log as one JSON line
{"method", "path", "range", "auth"} ("auth" is only whether a token was sent).

Switches, set with POST /_control and a JSON body (each is replaced by what is posted):
  {"private": ["org/repo"]}     401 without a bearer token, 403 with one other than --token
  {"drop_once": {"org/repo/file": N}}   close the connection after N body bytes, once
  {"stall_once": {"org/repo/file": [N, S]}}  send N bytes, go silent for S seconds, once
  {"wrong_hash": ["org/repo/file"]}     announce a sha256 that does not match the bytes
  {"ignore_range": true}        answer 200 with the whole file to Range requests
  {"no_sha": true}              announce no sha256 anywhere (listing, X-Linked-Etag)
  {"no_size": true}             announce no size anywhere (listing, tree, X-Linked-Size)
  {"endless": {"org/repo/file": N}}   the CDN ignores Range and sends the file and then N more
                                zero bytes with no Content-Length (the body ends when the
                                connection closes): a hub that announces nothing and sends on
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOCK = threading.Lock()
STATE = {}
SHA_CACHE = {}


def sha256_of(path):
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    with LOCK:
        if key in SHA_CACHE:
            return SHA_CACHE[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    with LOCK:
        SHA_CACHE[key] = h.hexdigest()
    return SHA_CACHE[key]


class Hub(BaseHTTPRequestHandler):
    server_version = "fake-hub/1"

    def log_message(self, fmt, *args):
        pass

    def log_request_line(self):
        entry = {
            "method": self.command,
            "path": self.path,
            "range": self.headers.get("Range"),
            "auth": bool(self.headers.get("Authorization")),
        }
        with LOCK:
            if self.server.log_path:
                with open(self.server.log_path, "a") as f:
                    f.write(json.dumps(entry) + "\n")

    def send_json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def denied(self, repo):
        """401/403 for a private repo without the right token, else None."""
        if repo not in STATE.get("private", []):
            return False
        auth = self.headers.get("Authorization")
        if not auth:
            self.send_json(401, {"error": "Invalid username or password."})
            return True
        if auth != "Bearer " + (self.server.token or ""):
            self.send_json(403, {"error": "Access to this repository is restricted."})
            return True
        return False

    def announced_sha(self, rel, path):
        if STATE.get("no_sha"):
            return None
        sha = sha256_of(path)
        if rel in STATE.get("wrong_hash", []):
            sha = hashlib.sha256(sha.encode()).hexdigest()
        return sha

    def repo_files(self, org, repo):
        base = os.path.join(self.server.root, org, repo)
        out = []
        for dirpath, _, names in os.walk(base):
            for n in sorted(names):
                p = os.path.join(dirpath, n)
                out.append((os.path.relpath(p, base), p))
        return sorted(out)

    def do_POST(self):
        self.log_request_line()
        if self.path != "/_control":
            return self.send_json(404, {"error": "not found"})
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        with LOCK:
            STATE.update(body)
        self.send_json(200, STATE)

    def do_GET(self):
        self.log_request_line()
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) >= 4 and parts[0] == "api" and parts[1] == "models":
            return self.api(parts[2], parts[3], parts[4:])
        if len(parts) >= 5 and parts[2:4] == ["resolve", "main"]:
            return self.resolve(parts[0], parts[1], "/".join(parts[4:]))
        if len(parts) >= 4 and parts[0] == "cdn":
            return self.cdn(parts[1], parts[2], "/".join(parts[3:]))
        self.send_json(404, {"error": "not found"})

    def api(self, org, repo, rest):
        rid = org + "/" + repo
        if self.denied(rid):
            return
        if not os.path.isdir(os.path.join(self.server.root, org, repo)):
            return self.send_json(404, {"error": "Repository not found"})
        entries = []
        no_size = STATE.get("no_size")
        for rel, p in self.repo_files(org, repo):
            size = os.path.getsize(p)
            sha = self.announced_sha(rid + "/" + rel, p)
            lfs = {"sha256": sha, "size": size, "pointerSize": 134} if sha else None
            if lfs and no_size:
                del lfs["size"]
            entries.append((rel, size, lfs))
        if rest == ["tree", "main"]:
            tree = []
            for rel, size, lfs in entries:
                e = {"type": "file", "path": rel, "size": size, "oid": "0" * 40}
                if no_size:
                    del e["size"]
                if lfs:
                    e["lfs"] = {"oid": lfs["sha256"], "pointerSize": 134}
                    if not no_size:
                        e["lfs"]["size"] = size
                tree.append(e)
            return self.send_json(200, tree)
        if rest:
            return self.send_json(404, {"error": "not found"})
        siblings = []
        for rel, size, lfs in entries:
            s = {"rfilename": rel, "size": size, "blobId": "0" * 40}
            if no_size:
                del s["size"]
            if lfs:
                s["lfs"] = lfs
            siblings.append(s)
        self.send_json(200, {"id": rid, "modelId": rid, "siblings": siblings})

    def resolve(self, org, repo, rel):
        rid = org + "/" + repo
        if self.denied(rid):
            return
        path = os.path.join(self.server.root, org, repo, rel)
        if not os.path.isfile(path):
            return self.send_json(404, {"error": "Entry not found"},
                                  {"X-Error-Code": "EntryNotFound"})
        extra = {"Location": "/cdn/%s/%s/%s" % (org, repo, rel)}
        if not STATE.get("no_size"):
            extra["X-Linked-Size"] = str(os.path.getsize(path))
        sha = self.announced_sha(rid + "/" + rel, path)
        if sha:
            extra["X-Linked-Etag"] = '"%s"' % sha
        self.send_json(302, {"redirect": extra["Location"]}, extra)

    def take_once(self, name, key):
        with LOCK:
            table = STATE.get(name) or {}
            v = table.pop(key, None)
            STATE[name] = table
        return v

    def cdn(self, org, repo, rel):
        path = os.path.join(self.server.root, org, repo, rel)
        if not os.path.isfile(path):
            return self.send_json(404, {"error": "not found"})
        size = os.path.getsize(path)
        key = "%s/%s/%s" % (org, repo, rel)
        endless = (STATE.get("endless") or {}).get(key)
        if endless is not None:
            return self.send_endless(path, int(endless))
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        partial = False
        if rng and not STATE.get("ignore_range"):
            spec = rng.replace("bytes=", "")
            a, _, b = spec.partition("-")
            start = int(a)
            end = int(b) if b else size - 1
            if start >= size:
                return self.send_json(416, {"error": "range not satisfiable"},
                                      {"Content-Range": "bytes */%d" % size})
            end = min(end, size - 1)
            partial = True
        key = "%s/%s/%s" % (org, repo, rel)
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"cdn-%s"' % key.replace("/", "-"))
        if partial:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        count = end - start + 1
        drop = self.take_once("drop_once", key)
        stall = self.take_once("stall_once", key)
        with open(path, "rb") as f:
            if drop is not None:
                self.send_bytes(f, start, min(count, drop))
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if stall is not None:
                n, secs = stall
                self.send_bytes(f, start, min(count, n))
                time.sleep(secs)
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_bytes(f, start, count)

    def send_endless(self, path, extra):
        """The file, then `extra` zero bytes, in a body that only the closed connection ends."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            with open(path, "rb") as f:
                self.wfile.write(f.read())
            chunk = b"\0" * (1 << 16)
            while extra > 0:
                n = min(extra, len(chunk))
                self.wfile.write(chunk[:n])
                extra -= n
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_bytes(self, f, offset, count):
        out = self.connection.fileno()
        while count > 0:
            try:
                n = os.sendfile(out, f.fileno(), offset, min(count, 1 << 30))
            except (BrokenPipeError, ConnectionResetError):
                return
            if n == 0:
                return
            offset += n
            count -= n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--token")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    srv.daemon_threads = True
    srv.root = args.root
    srv.log_path = args.log
    srv.token = args.token
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
