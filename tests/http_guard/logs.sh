#!/usr/bin/env bash
# Worker logs cannot blow the hive up: clients that never read a 16 MB tail cost it no memory
# (the tail is sent from the file), and a follow on a line without newline goes out in pieces
# of bounded size (not buffered whole, not rescanned), ends when its client goes, and does not
# hold up SIGTERM.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/http_guard/guard_lib.sh"

adopt_worker w-flat
python3 -c '
import sys
line = b"x" * 63 + b"\n"
with open(sys.argv[1], "wb") as f:
    f.write(line * (16 * 1024 * 1024 // 64))' "$RBEE_HOME/logs/w-tail.log"
start_hive
assert_adopted

# 1. 30 clients ask for the 16 MB tail and never read it.
out=$(raw "$HIVE_PORT" "
pid = $HIVE_PID
def rss():
    for l in open('/proc/%d/status' % pid):
        if l.startswith('VmRSS:'):
            return int(l.split()[1]) // 1024
before = rss()
socks = []
for i in range(30):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(('127.0.0.1', port))
    s.sendall(b'GET /v1/workers/w-tail/logs?tail=100000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    socks.append(s)
time.sleep(3)
grew = rss() - before
print('bounded' if grew < 64 else 'grew %d MB' % grew)
for s in socks:
    s.close()")
assert_eq "$out" "bounded" "30 clients not reading a 16 MB tail grow the hive by less than 64 MB"
assert_eq "$(curl -s "$HIVE_URL/v1/workers/w-tail/logs?tail=2" | wc -l)" 2 "a tail still works"

# 2. follow while the worker writes 48 MB without a newline.
out=$(raw "$HIVE_PORT" "
log = '$RBEE_HOME/logs/w-flat.log'
s = conn(timeout=5)
s.sendall(b'GET /v1/workers/w-flat/logs?follow=1&tail=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
head = s.recv(65536)
with open(log, 'ab') as f:
    for i in range(48):
        f.write(b'y' * (1 << 20))
got, longest, t = b'', 0, time.time()
while time.time() - t < 5 and len(got) < (4 << 20):
    try:
        d = s.recv(1 << 20)
    except socket.timeout:
        break
    if not d:
        break
    got += d
for l in got.split(b'\n'):
    if l.startswith(b'data: '):
        longest = max(longest, len(l) - 6)
print('flowing' if len(got) >= (4 << 20) else 'stuck at %d bytes' % len(got),
      'pieces' if 0 < longest <= 65536 else 'longest %d' % longest)
s.close()")
assert_eq "$out" "flowing pieces" "a newline-less line streams at once, in pieces of at most 64 KiB"

threads() { awk '/^Threads:/ {print $2}' "/proc/$HIVE_PID/status"; }
base_threads=$(threads)
# 3. A client that stops reading, then goes: memory stays bounded, its stream ends.
out=$(raw "$HIVE_PORT" "
pid = $HIVE_PID
def rss():
    for l in open('/proc/%d/status' % pid):
        if l.startswith('VmRSS:'):
            return int(l.split()[1]) // 1024
log = '$RBEE_HOME/logs/w-flat.log'
before = rss()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(5)
s.connect(('127.0.0.1', port))
s.sendall(b'GET /v1/workers/w-flat/logs?follow=1&tail=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
s.recv(100)
with open(log, 'ab') as f:
    for i in range(48):
        f.write(b'z' * (1 << 20))
time.sleep(3)
grew = rss() - before
print('bounded' if grew < 32 else 'grew %d MB' % grew)
s.close()")
assert_eq "$out" "bounded" "a follow whose client stops reading holds less than 32 MB"
WAIT_S=5 wait_for test "$(threads)" -le "$base_threads" ||
	fail "the stream's thread is still there 5 s after its client left ($(threads) > $base_threads)"
ok "the stream ended when its client left"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers"

# 4. SIGTERM while a client is stuck on a follow that has more to send.
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v1/workers/w-flat/logs?follow=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
time.sleep(30)' "$HIVE_PORT" &
stuck=$!
track $stuck
python3 -c '
import sys
with open(sys.argv[1], "ab") as f:
    f.write(b"w" * (32 << 20))' "$RBEE_HOME/logs/w-flat.log"
sleep 1
start=$SECONDS
kill -TERM "$HIVE_PID"
WAIT_S=8 wait_for bash -c "grep -q 'rbee-hive info: stopped' '$HIVE_LOG'" ||
	fail "the hive did not exit within 8 s of SIGTERM with a stuck client"
ok "SIGTERM with a stuck client exits in $((SECONDS - start)) s"
kill "$stuck" 2>/dev/null || true
pass
