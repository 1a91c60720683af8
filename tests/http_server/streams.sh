#!/usr/bin/env bash
# Streams hold no thread (issue 13). On the real hive, with 300 job streams, 20 heartbeat
# streams and 30 log follows open at once:
#   - the hive's thread count does not grow with them (thread-per-connection would add 350);
#   - clients of quiet streams (follows of a log nobody writes) that hang up have their
#     connections closed within 3 s, though nothing is sent to them;
#   - a line appended to a worker's log reaches the follower at once (inotify; a 250 ms poll
#     misses the 100 ms bound most of the time);
#   - heartbeats still come every second;
#   - clients that hang up while their streams wait (suspended connections, which
#     libmicrohttpd itself does not watch) have their connections closed within 3 s;
#   - SIGTERM still gives every open job stream its terminal event and the hive exits promptly.
. "$RBEE_SRC/tests/lib.sh"

[ "$(ulimit -Hn)" -ge 1024 ] || { echo "SKIP: the open-file limit is below 1024"; exit 0; }
ulimit -n "$(ulimit -Hn)"

adopt_worker w-log
echo "first line" >"$RBEE_HOME/logs/w-log.log"

export RBEE_ENABLE_TEST_OPS=1 RBEE_HTTP_MAX_PER_IP=1000
HIVE_BIN="$BIN/rbee-hive-test" start_hive
assert_adopted
JOB=$(submit '{"operation":"test_sleep","seconds":60,"lines":20}')

python3 - "$HIVE_PORT" "$HIVE_PID" "$JOB" "$RBEE_HOME/logs/w-log.log" "$T" <<'PY' >"$T/py.out" 2>&1 &
import os, select, socket, statistics, sys, time
port, pid, job, log, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def threads():
    return len(os.listdir("/proc/%d/task" % pid))
def fds():
    return len(os.listdir("/proc/%d/fd" % pid))
def say(*a):
    print(*a, flush=True)
def open_stream(path):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    return s
def read_until(s, marker, timeout):
    """Read until `marker` was received; returns the bytes, or None at the timeout."""
    data, end = b"", time.time() + timeout
    s.setblocking(False)
    while marker not in data:
        left = end - time.time()
        if left <= 0:
            return None
        r, _, _ = select.select([s], [], [], left)
        if r:
            chunk = s.recv(65536)
            if not chunk:
                return data if marker in data else None
            data += chunk
    return data

time.sleep(0.5)
base_threads, base_fds = threads(), fds()
jobs = [open_stream("/v1/jobs/%s/stream" % job) for _ in range(300)]
beats = [open_stream("/v1/heartbeats/stream") for _ in range(20)]
for s in jobs:
    if read_until(s, b"line 20 of 20", 20) is None:
        say("a job stream did not replay the job's narration"); sys.exit(1)
for s in beats:
    if read_until(s, b"event: heartbeat", 10) is None:
        say("a heartbeat stream sent no beat"); sys.exit(1)
follows = [open_stream("/v1/workers/w-log/logs?follow=1&tail=1") for _ in range(30)]
for s in follows:
    if read_until(s, b"first line", 10) is None:
        say("a follow did not send the log's tail"); sys.exit(1)
follow = follows.pop()
time.sleep(1)
say("threads %d %d" % (base_threads, threads()))
say("fds %d %d" % (base_fds, fds()))

# 29 follow clients hang up while their streams wait on a quiet log: nothing is sent to them
# for 15 s (the keep-alive), so only the server's own watch on their sockets can notice.
before = fds()
for s in follows:
    s.close()
t = time.time()
while fds() > before - 29 and time.time() - t < 3:
    time.sleep(0.05)
say("quiet %d %d %.2f" % (before, fds(), time.time() - t))

# A line appended to the log: how long until the follower has it (9 times, each while the
# stream waits, at a random point of any poll cycle).
lat = []
for i in range(9):
    time.sleep(0.37)
    marker = ("appended-%d" % i).encode()
    t = time.time()
    with open(log, "ab") as f:
        f.write(marker + b"\n")
    got = read_until(follow, marker, 5)
    lat.append((time.time() - t) * 1000 if got is not None else 5000)
say("follow_ms " + " ".join("%.0f" % x for x in lat))

# Heartbeats: one stream, 2.5 s.
h = beats[0]
h.setblocking(True)
h.settimeout(0.1)
try:
    while h.recv(65536):
        pass
except OSError:
    pass
n, end = 0, time.time() + 2.5
buf = b""
h.setblocking(False)
while time.time() < end:
    r, _, _ = select.select([h], [], [], max(0, end - time.time()))
    if r:
        buf += h.recv(65536)
say("beats %d" % buf.count(b"event: heartbeat"))

# 150 job clients and all heartbeat clients hang up while their streams wait.
before = fds()
for s in jobs[150:] + beats:
    s.close()
jobs = jobs[:150]
t = time.time()
while fds() > before - 170 + 5 and time.time() - t < 3:
    time.sleep(0.05)
say("hangup %d %d %.2f" % (before, fds(), time.time() - t))

# SIGTERM: every open job stream must end with the job's terminal event.
open(tmp + "/ready", "w").close()
ended = 0
for s in jobs:
    d = read_until(s, b"data: [CANCELLED]", 15)
    if d is not None:
        ended += 1
say("terminal %d/%d" % (ended, len(jobs)))
PY
py=$!
track $py
WAIT_S=90 wait_for test -e "$T/ready" || fail "the stream client did not get that far: $(cat "$T/py.out")"
cat "$T/py.out"

read -r _ base during < <(grep '^threads' "$T/py.out")
[ "$during" -le $((base + 2)) ] ||
	fail "the hive grew from $base to $during threads with 350 streams open"
ok "350 streams open: the hive has $during threads (it had $base)"
[ "$during" -le $((2 * $(nproc) + 16)) ] || fail "$during threads is more than 2 x cores + 16"
ok "threads stay within 2 x cores + a constant"
read -r _ fbase fduring < <(grep '^fds' "$T/py.out")
[ "$fduring" -ge $((fbase + 350)) ] || fail "the streams are not all open ($fbase -> $fduring descriptors)"
ok "all 350 streams are held at once"

read -r _ qb qa qs < <(grep '^quiet' "$T/py.out")
[ "$qa" -le $((qb - 29)) ] || fail "29 follow clients hung up, the hive went from $qb to $qa descriptors in $qs s"
ok "29 hung-up clients of quiet streams freed their connections in $qs s"

read -r _ lat < <(grep '^follow_ms' "$T/py.out")
fast=0
for ms in $lat; do [ "$ms" -le 100 ] && fast=$((fast + 1)); done
[ "$fast" -ge 8 ] || fail "appended log lines reached the follower in $lat ms (want 8 of 9 within 100 ms)"
ok "appended log lines reach the follower at once ($lat ms)"

read -r _ beats < <(grep '^beats' "$T/py.out")
[ "$beats" -ge 2 ] && [ "$beats" -le 4 ] || fail "expected 2-4 heartbeats in 2.5 s, got $beats"
ok "heartbeats come every second ($beats in 2.5 s)"

read -r _ hb ha hs < <(grep '^hangup' "$T/py.out")
[ "$ha" -le $((hb - 165)) ] || fail "170 clients hung up, the hive went from $hb to $ha descriptors"
ok "170 hung-up stream clients freed their connections in $hs s"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers"

start=$SECONDS
kill -TERM "$HIVE_PID"
WAIT_S=10 wait_for bash -c "! kill -0 $HIVE_PID" || fail "the hive did not exit within 10 s of SIGTERM"
ok "SIGTERM with 150 streams open: the hive exited in $((SECONDS - start)) s"
WAIT_S=20 wait_for grep -q '^terminal' "$T/py.out" || fail "the client did not finish: $(cat "$T/py.out")"
assert_eq "$(grep '^terminal' "$T/py.out")" "terminal 150/150" "every open job stream got [CANCELLED]"
grep -q "rbee-hive info: stopped" "$HIVE_LOG" || fail "the hive did not log a clean stop: $(tail -5 "$HIVE_LOG")"
ok "the hive stopped cleanly"
pass
