#!/usr/bin/env bash
# A stream lifts its connection's idle timeout while it runs; once it has ended, a kept-alive
# connection gets it back, also when the header and idle timeouts are equal (then only the
# stream had changed it): a client cannot park idle connections by reading finished streams.
. "$RBEE_SRC/tests/lib.sh"
RBEE_HTTP_TIMEOUT_S=2 RBEE_HTTP_HEADER_TIMEOUT_S=2 start_hive
id=$(submit '{"operation":"hive_check"}') || fail "submit failed"
stream "$id" >/dev/null
out=$(python3 - "$HIVE_PORT" "$id" <<'PY'
import socket, sys, time
port, job = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(30)
s.sendall(b"GET /v1/jobs/%s/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % job.encode())
data = b""
while b"\r\n0\r\n\r\n" not in data:  # the last chunk: the stream has ended, the connection stays
    chunk = s.recv(65536)
    if not chunk:
        print("closed before the stream ended"); sys.exit(0)
    data += chunk
print("ended", b"[DONE]" in data)
t = time.time()
try:
    print("idle", "closed" if s.recv(1) == b"" else "data", round(time.time() - t, 1))
except socket.timeout:
    print("idle open", round(time.time() - t, 1))
PY
)
assert_contains "$out" "ended True" "the finished job's stream ends with [DONE] on a kept-alive connection"
idle=$(sed -n 's/^idle closed \([0-9.]*\)$/\1/p' <<<"$out")
[ -n "$idle" ] || fail "the connection was not closed after the stream: $out"
awk -v t="$idle" 'BEGIN { exit !(t <= 6) }' || fail "closed only after ${idle} s (timeout 2 s)"
ok "the idle connection after the stream is closed after the timeout (${idle} s)"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"
pass
