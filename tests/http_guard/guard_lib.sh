# guard_lib.sh - helpers for the HTTP boundary tests; source after tests/lib.sh.
#
#   raw PORT PYTHON       run a snippet with `port`, `conn(src="127.0.0.1")` (a socket from that
#                         loopback address) and `answer(s)` (the status line, "closed" or
#                         "no answer") defined; it prints what the test compares
#   rss_kb PID            resident memory of a process in KiB (VmRSS)
#   health_ok URL         /health answers within 3 s

raw() {
	python3 - "$1" "$2" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def conn(src="127.0.0.1", timeout=8):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s
def answer(s):
    try:
        data = s.recv(65536)
        line = data.split(b"\r\n")[0].decode()
        return line if line else "closed"
    except socket.timeout:
        return "no answer"
    except OSError:
        return "closed"
def response(s):
    """The whole answer of a Connection: close request."""
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    return data.decode(errors="replace")
exec(sys.argv[2])
PY
}

rss_kb() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

health_ok() {
	[ "$(curl -s --max-time 3 "$1/health")" != "" ]
}
