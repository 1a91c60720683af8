#!/usr/bin/env bash
# The HTTP server against hostile and unlucky clients: a declared oversized body is refused
# before it is read, an endless chunked body does not hold a thread forever, a client that
# never finishes its headers is dropped after RBEE_HTTP_TIMEOUT_S, and job streams (quiet
# between keep-alives) are not.
. "$RBEE_SRC/tests/lib.sh"

export RBEE_HTTP_TIMEOUT_S=2 RBEE_ENABLE_TEST_OPS=1
HIVE_BIN="$BIN/rbee-hive-test" # test_sleep: only in the tests' build of the hive
start_hive --max-jobs 1

# raw PYTHON_SNIPPET: run a snippet with `port` and `conn()` defined; it prints one line.
raw() {
	python3 - "$HIVE_PORT" "$1" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(8)
    return s
def answer(s):
    try:
        line = s.recv(200).split(b"\r\n")[0].decode()
        return line if line else "closed"
    except socket.timeout:
        return "no answer"
    except OSError:
        return "closed"
exec(sys.argv[2])
PY
}

out=$(raw '
s = conn(); t = time.time()
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
          b"Content-Length: 1000000000000\r\n\r\n{")
print(answer(s), "%.0f" % (time.time() - t))')
assert_eq "$out" "HTTP/1.1 413 Content Too Large 0" \
	"a declared 1 TB body gets 413 at once, without waiting for the body"

out=$(raw '
s = conn()
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
try:
    for i in range(1000):
        s.sendall(chunk)
except OSError:
    pass
print(answer(s))')
assert_eq "$out" "closed" "an endless chunked body is cut off, not read forever"
assert_contains "$(cat "$HIVE_LOG")" "closing a connection that sent a POST /v1/jobs body past" \
	"and the hive says so"

out=$(raw '
s = conn()
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
for i in range(24):
    s.sendall(chunk)
s.sendall(b"0\r\n\r\n")
print(answer(s))')
assert_eq "$out" "HTTP/1.1 413 Content Too Large" "an ordinary oversized chunked body still gets its 413"

out=$(raw '
s = conn(); t = time.time()
s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
r = answer(s)
print(r, "fast" if time.time() - t < 6 else "slow")')
assert_eq "$out" "closed fast" "a client that never ends its headers is dropped after the timeout"

out=$(raw '
s = conn(); t = time.time()
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"oper")
r = answer(s)
print(r, "fast" if time.time() - t < 6 else "slow")')
assert_eq "$out" "closed fast" "a client that stalls in its body is dropped after the timeout"

# A stream that stays quiet longer than the timeout: its job waits in the queue behind a
# 4-second job (--max-jobs 1), and the next keep-alive is 15 s away.
busy=$(submit '{"operation":"test_sleep","seconds":4}')
quiet=$(submit '{"operation":"test_sleep","seconds":0}')
out=$(stream "$quiet")
assert_contains "$out" "data: [DONE]" "a quiet job stream outlives the idle timeout"
out=$(stream "$busy")
assert_contains "$out" "data: [DONE]" "and so does the busy one"

r=$(http GET /health)
assert_eq "$r" "200 ok" "the hive still answers"
pass
