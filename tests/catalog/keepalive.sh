#!/usr/bin/env bash
# rbee-catalog keeps connections alive as HTTP/1.1 expects (issue 13), within its limits: two
# requests share one connection, a request with a body is still answered without reading it
# (and that connection closed), HTTP/1.0 without keep-alive is closed, the per-IP connection
# limit still counts kept connections, and idle kept connections are closed after the timeout.
. "$RBEE_SRC/tests/lib.sh"

RBEE_HTTP_MAX_PER_IP=2 RBEE_HTTP_TIMEOUT_S=2 start_catalog "$RBEE_SRC/tests/catalog/fixtures/catalog"
C=$CATALOG_URL

# --- two URLs in one curl: the second request reuses the connection
out=$(curl -sv -o /dev/null "$C/health" -o /dev/null "$C/workers" 2>&1)
assert_contains "$out" "Re-using existing connection" "curl reuses the connection for the second URL"
assert_not_contains "$out" "< Connection: close" "no answer says Connection: close"
assert_eq "$(grep -c '^< HTTP/1.1 200' <<<"$out")" 2 "both requests are answered 200"

# --- a request with a body (no route takes one) is answered at once, its body never read
out=$(curl -sv -o /dev/null -X POST --data-binary 'x' "$C/workers" 2>&1)
assert_contains "$out" "< HTTP/1.1 405" "a POST with a body is still refused 405"
assert_contains "$out" "< Connection: close" "and its connection is closed (the body is not read)"

# --- HTTP/1.0 without keep-alive: closed, as HTTP/1.0 expects
out=$(curl -sv -0 -o /dev/null "$C/health" -o /dev/null "$C/health" 2>&1)
assert_not_contains "$out" "Re-using existing connection" "HTTP/1.0 connections are not reused"

# --- the limits still hold for kept connections (2 per IP, idle timeout 2 s)
out=$(python3 - "${C##*:}" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def get(s):
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return "closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(4096)
    return head.split(b"\r\n")[0].decode()
def kept():
    # The connections of the curl runs above may still count for this address until the
    # server has seen them close (a moment on a loaded machine): retry, for at most 5 s.
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        try:
            r = get(s)
            if r != "closed":
                return s, r
        except OSError:
            pass
        s.close()
        time.sleep(0.1)
    sys.exit("no connection was accepted for 5 s")
a, r = kept(); print("a1", r); print("a2", get(a))
b, r = kept(); print("b1", r)
c = socket.create_connection(("127.0.0.1", port)); c.settimeout(5)
try:
    print("c", get(c))
except OSError as e:
    print("c closed")
c.close()
a.settimeout(10)
t = time.time()
print("a idle", a.recv(1) == b"" and "closed", round(time.time() - t))
b.close(); a.close()
d = socket.create_connection(("127.0.0.1", port)); print("d", get(d)); d.close()
PY
)
assert_contains "$out" "a1 HTTP/1.1 200" "a kept connection answers"
assert_contains "$out" "a2 HTTP/1.1 200" "and answers again on the same connection"
assert_contains "$out" "b1 HTTP/1.1 200" "a second connection from the same IP answers"
assert_contains "$out" "c closed" "a third connection from the same IP is refused (per-IP limit 2)"
idle=$(sed -n 's/^a idle closed \([0-9]*\)$/\1/p' <<<"$out")
[ -n "$idle" ] && [ "$idle" -le 5 ] || fail "an idle kept connection was not closed within the timeout: $out"
ok "an idle kept connection is closed after the timeout (${idle} s)"
assert_contains "$out" "d HTTP/1.1 200" "once they are closed, a new connection answers"
assert_eq "$(curl -s "$C/health" | jq -r .status)" ok "the catalog still answers /health"
pass
