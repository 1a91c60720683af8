#!/usr/bin/env bash
# One client cannot starve the hive: 1000 idle sockets from one address (none sends a request)
# leave /health answering at once for everyone else, since one address gets at most
# RBEE_HTTP_MAX_PER_IP connections; and the idle ones are closed once the header timeout passes.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/http_guard/guard_lib.sh"

export RBEE_HTTP_HEADER_TIMEOUT_S=3
start_hive

# idle_flood PORT: 1000 idle sockets from 127.0.0.2, then /health from 127.0.0.1; prints
# "<health> <fast|slow> <all closed|N open>".
idle_flood() {
	raw "$1" '
import select
socks, failed = [], 0
for i in range(1000):
    try:
        socks.append(conn("127.0.0.2", timeout=2))
    except OSError:
        failed += 1
t = time.time()
try:
    s = conn("127.0.0.1", timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    r = response(s)
    health = "answered" if r.startswith("HTTP/1.1 200") else "refused"
except OSError:
    health = "refused"
speed = "fast" if time.time() - t < 2 else "slow"
# The hive closes every idle one: at once beyond the per-address budget, the rest after the
# header timeout (3 s here). Wait at most 12 s.
open_ = {s.fileno(): s for s in socks}
deadline = time.time() + 12
while open_ and time.time() < deadline:
    ready, _, _ = select.select(list(open_.values())[:1000], [], [], 0.5)
    for s in ready:
        try:
            d = s.recv(1)
        except OSError:
            d = b""
        if not d:
            del open_[s.fileno()]
            s.close()
print(health, speed, "all closed" if not open_ else "%d open" % len(open_))'
}

out=$(idle_flood "$HIVE_PORT")
assert_eq "$out" "answered fast all closed" \
	"with 1000 idle sockets from one address, /health answers at once; the idle ones are closed"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers"

# Same for rbee-catalog.
export RBEE_HTTP_TIMEOUT_S=3
start_catalog "$RBEE_SRC/tests/catalog/fixtures/catalog"
out=$(idle_flood "${CATALOG_URL##*:}")
assert_eq "$out" "answered fast all closed" "rbee-catalog too"
assert_eq "$(curl -s "$CATALOG_URL/health" | jq -r .status)" ok "the catalog still answers"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "and so does the hive"
pass
