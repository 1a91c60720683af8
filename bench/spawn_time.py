#!/usr/bin/env python3
"""bench/spawn_time.py PORT BINARY MODEL RUNS - spawn-to-ready timed from one client process.

Alternates, RUNS times: (1) the worker binary started by hand (fork/exec from here) on a free
port and polled over HTTP every millisecond until /health answers; (2) the hive's worker_spawn,
submit to the stream's [DONE], then the worker stopped again. Both sides are timed here, in
one process, with no program started per request: curl and jq cost 5-15 ms each on the
2-core VM, more than what is measured. Prints "hand_ms hive_ms" per run.
"""
import http.client
import json
import subprocess
import sys
import time

port, binary, model, runs = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
HAND_PORT = 29900


def request(p, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", p, timeout=30)
    c.request(method, path, body=body,
              headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def job(body):
    status, data = request(port, "POST", "/v1/jobs", json.dumps(body))
    if status != 200 and status != 201 and status != 202:
        sys.exit(f"spawn_time: submit failed: HTTP {status} {data!r}")
    jid = json.loads(data)["job_id"]
    return request(port, "GET", f"/v1/jobs/{jid}/stream")[1].decode()


def healthy(p):
    try:
        return request(p, "GET", "/health")[0] == 200
    except OSError:
        return False


for _ in range(runs):
    t0 = time.monotonic()
    w = subprocess.Popen([binary, "--worker-id", "bench", "--model", model, "--model-ref",
                          "org/tiny-GGUF", "--backend", "cpu", "--device", "0", "--port",
                          str(HAND_PORT), "--hive-url", f"http://127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthy(HAND_PORT):
        time.sleep(0.001)
    hand = (time.monotonic() - t0) * 1000
    w.kill()
    w.wait()
    t0 = time.monotonic()
    out = job({"operation": "worker_spawn", "model": "org/tiny-GGUF",
               "worker": "rbee-test-worker-local"})
    hive = (time.monotonic() - t0) * 1000
    if "[DONE]" not in out:
        sys.exit("spawn_time: spawn failed: " + out[-400:])
    pid = next(json.loads(l[6:])["pid"] for l in out.splitlines()
               if l.startswith("data: {") and '"pid"' in l)
    if "[DONE]" not in job({"operation": "worker_process_delete", "pid": pid}):
        sys.exit(f"spawn_time: stopping worker {pid} failed")
    print(f"{hand:.2f} {hive:.2f}", flush=True)
