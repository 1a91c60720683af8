#!/usr/bin/env bash
# A client that half-closes (shutdown(SHUT_WR) once its request is sent: HTTP/1.0-style
# clients, `nc -N`, some proxies) still reads, so it keeps its stream: a job stream through
# [DONE] while the job is quiet for seconds, and a log follow that gets a line written later.
# A client that closes for good mid-stream is still dropped at once, though its FIN looks the
# same as a half-close.
. "$RBEE_SRC/tests/lib.sh"

adopt_worker w-half
echo "first line" >"$RBEE_HOME/logs/w-half.log"
export RBEE_ENABLE_TEST_OPS=1
HIVE_BIN="$BIN/rbee-hive-test" start_hive
assert_adopted
JOB=$(submit '{"operation":"test_sleep","seconds":3,"lines":2}')

out=$(python3 - "$HIVE_PORT" "$HIVE_PID" "$JOB" "$RBEE_HOME/logs/w-half.log" <<'PY'
import os, select, socket, sys, time
port, pid, job, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

def held(cport):
    """Whether the hive still holds its end of the connection from client port cport."""
    inodes = set()
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and int(f[2].split(":")[1], 16) == cport:
            inodes.add("socket:[%s]" % f[9])
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) in inodes:
                return True
        except OSError:
            pass
    return False
def open_stream(path, half_close):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    if half_close:
        s.shutdown(socket.SHUT_WR)
    return s
def read_until(s, marker, timeout):
    """What came until `marker` (or the close, or the timeout)."""
    data, end = b"", time.time() + timeout
    while marker not in data:
        left = end - time.time()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data

job_s = open_stream("/v1/jobs/%s/stream" % job, True)
follow = open_stream("/v1/workers/w-half/logs?follow=1&tail=1", True)
print("follow-tail", b"first line" in read_until(follow, b"first line", 10))
time.sleep(1.5)  # both wait, their FIN long seen
with open(log, "ab") as f:
    f.write(b"written later\n")
print("follow-later", b"written later" in read_until(follow, b"written later", 5))
d = read_until(job_s, b"[DONE]", 15)
print("job-done", b"removed scratch file" in d and b"data: [DONE]" in d)

# Clients that close for good while their streams wait, everything sent to them read (a FIN,
# no reset): a quiet follow (its keep-alive is 15 s away) and a job stream.
quiet = open_stream("/v1/workers/w-half/logs?follow=1&tail=1", False)
read_until(quiet, b"written later", 10)
time.sleep(0.3)
cport = quiet.getsockname()[1]
print("held", held(cport))
quiet.close()
t = time.time()
while held(cport) and time.time() - t < 5:
    time.sleep(0.02)
print("closed-dropped %s %.2f" % (not held(cport), time.time() - t))
PY
)
echo "$out"
assert_contains "$out" "follow-tail True" "a half-closed follow gets the log's tail"
assert_contains "$out" "follow-later True" "a half-closed follow gets a line written 1.5 s later"
assert_contains "$out" "job-done True" "a half-closed job stream gets the job's end and [DONE] 3 s later"
assert_contains "$out" "held True" "the hive holds the connection of a quiet follow"
assert_contains "$out" "closed-dropped True" "a client that closed a quiet follow is dropped"
secs=$(sed -n 's/^closed-dropped True \([0-9.]*\)$/\1/p' <<<"$out")
awk -v t="$secs" 'BEGIN { exit !(t < 1) }' || fail "the closed client was dropped only after $secs s"
ok "it is dropped at once ($secs s)"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive still answers"
pass
