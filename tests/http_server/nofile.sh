#!/usr/bin/env bash
# A hive whose open-file limit cannot hold many connections (issue 13): it raises the soft
# limit to the hard one at start, cuts its connection budget to what the limit leaves (keeping
# descriptors for jobs, logs and plugins) and says so in its log; a flood of streams past that
# budget is refused connection by connection, and once it ends the hive answers and runs jobs
# as before.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/http_guard/guard_lib.sh"

export RBEE_HTTP_MAX_PER_IP=1000
HIVE_LAUNCHER=(bash -c 'ulimit -Sn 300 && ulimit -Hn 600 && exec "$@"' _)
start_hive
limits=$(grep 'Max open files' "/proc/$HIVE_PID/limits")
assert_eq "$(awk '{print $4, $5}' <<<"$limits")" "600 600" "the soft open-file limit was raised to the hard one"
assert_contains "$(cat "$HIVE_LOG")" "the open-file limit (RLIMIT_NOFILE) is 600, so this hive takes at most 344 connections at once" \
	"the log says how many connections the limit leaves"

out=$(raw "$HIVE_PORT" '
socks, refused = [], 0
for i in range(450):
    try:
        s = conn(timeout=3)
        s.sendall(b"GET /v1/heartbeats/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        socks.append(s)
    except OSError:
        refused += 1
time.sleep(1.5)
streaming = 0
for s in socks:
    try:
        s.settimeout(0.2)
        if b"event: heartbeat" in s.recv(65536):
            streaming += 1
    except OSError:
        pass
print(streaming)
for s in socks:
    s.close()')
[ "$out" -le 344 ] && [ "$out" -ge 100 ] || fail "expected at most 344 of 450 streams served, got $out"
ok "450 streams at once: $out served, the rest refused"
WAIT_S=10 wait_for curl -sf "$HIVE_URL/health" || fail "the hive does not answer after the flood"
ok "the hive answers after the flood"
out=$(run_job '{"operation":"hive_check"}')
assert_contains "$out" "data: [DONE]" "and runs a job to [DONE]"
grep -q "Too many open files" "$HIVE_LOG" && fail "the hive ran out of descriptors: $(grep -m1 'Too many' "$HIVE_LOG")"
ok "it never ran out of descriptors"
pass
