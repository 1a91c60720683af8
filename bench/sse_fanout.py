#!/usr/bin/env python3
"""bench/sse_fanout.py PORT JOB_ID N: hold N SSE streams of one job open at once, from one
process (selectors, non-blocking sockets), and read each to its end.

Prints "open N" (flushed) once all N requests are sent, so the caller can sample the hive while
they are all held, then when every stream ended: "completed C/N distinct D", where C counts
streams whose last data line is [DONE] and D the distinct event sequences among all N (comment
lines such as keep-alives aside). HTTP/1.0 requests, so the body is the plain event stream,
ended by the server closing the connection."""
import hashlib
import selectors
import socket
import sys
import time

port, job, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
req = ("GET /v1/jobs/%s/stream HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % job).encode()
sel = selectors.DefaultSelector()
bufs = {}
for i in range(n):
    s = socket.socket()
    for attempt in range(50):
        try:
            s.connect(("127.0.0.1", port))
            break
        except OSError:  # a full listen backlog: try again shortly
            s.close()
            s = socket.socket()
            time.sleep(0.05)
    else:
        sys.exit("cannot connect stream %d" % i)
    s.sendall(req)
    s.setblocking(False)
    bufs[s] = bytearray()
    sel.register(s, selectors.EVENT_READ)
print("open %d" % n, flush=True)

done = []
deadline = time.time() + 600
while bufs and time.time() < deadline:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        try:
            chunk = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            chunk = b""
        if chunk:
            bufs[s] += chunk
            continue
        sel.unregister(s)
        s.close()
        done.append(bytes(bufs.pop(s)))
for s, b in bufs.items():  # never ended: counted as not completed
    done.append(bytes(b))
    s.close()

completed, seqs = 0, set()
for raw in done:
    body = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else b""
    lines = [l for l in body.split(b"\n") if l and not l.startswith(b":")]
    data = [l for l in lines if l.startswith(b"data: ")]
    if data and data[-1] == b"data: [DONE]":
        completed += 1
    seqs.add(hashlib.sha256(b"\n".join(lines)).hexdigest())
print("completed %d/%d distinct %d" % (completed, n, len(seqs)), flush=True)
