#!/usr/bin/env bash
# rbee-catalog's boundary: CORS for the allowed origins (by default those of the original Hono
# catalog: the Hive UI, queen and keeper on localhost), preflights answered 204, nothing for
# other origins; a foreign Host refused (DNS rebinding); ambiguous framing refused.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/http_guard/guard_lib.sh"

start_catalog "$RBEE_SRC/tests/catalog/fixtures/catalog"
C=$CATALOG_URL
port=${C##*:}
hdrs() { curl -s -D - -o "$T/body" "$@" | tr -d '\r'; }

h=$(hdrs -H 'Origin: http://localhost:7836' "$C/workers")
assert_contains "$h" "Access-Control-Allow-Origin: http://localhost:7836" "the Hive UI's origin may read /workers"
assert_contains "$h" "Access-Control-Allow-Credentials: true" "with credentials, as the Hono catalog"
assert_eq "$(jq '.workers | length' "$T/body")" "$(curl -s "$C/workers" | jq '.workers | length')" \
	"and gets the same catalog"
h=$(hdrs -H 'Origin: http://127.0.0.1:8500' "$C/workers/test-worker-a/PKGBUILD")
assert_contains "$h" "Access-Control-Allow-Origin: http://127.0.0.1:8500" "queen's origin may read a PKGBUILD"
assert_eq "$(cat "$T/body")" "$(curl -s "$C/workers/test-worker-a/PKGBUILD")" "the same PKGBUILD"
h=$(hdrs -H 'Origin: http://localhost:8501' "$C/workers/nope")
assert_contains "$h" "Access-Control-Allow-Origin: http://localhost:8501" "a 404 carries CORS too"
h=$(hdrs -X OPTIONS -H 'Origin: http://localhost:7836' -H 'Access-Control-Request-Method: GET' "$C/workers")
assert_contains "$h" "HTTP/1.1 204" "a preflight is 204"
assert_contains "$h" "Access-Control-Allow-Methods: GET, HEAD, OPTIONS" "naming the methods"
assert_contains "$h" "Access-Control-Allow-Headers: Content-Type, Authorization" "and headers"
assert_contains "$h" "Access-Control-Max-Age: 600" "cached for 10 minutes"
h=$(hdrs -H 'Origin: https://evil.example' "$C/workers")
assert_not_contains "$h" "Access-Control-Allow-Origin" "another origin gets no CORS headers"
h=$(hdrs -X OPTIONS -H 'Origin: https://evil.example' "$C/workers")
assert_contains "$h" "HTTP/1.1 204" "its preflight is 204"
assert_not_contains "$h" "Access-Control-Allow-Origin" "but allows nothing"

code=$(curl -s -o "$T/body" -w '%{http_code}' -H "Host: evil.example:$port" "$C/workers")
assert_eq "$code" 403 "a foreign Host is refused"
assert_contains "$(jq -r .error "$T/body")" "is not a name of this catalog server" "and says why"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: localhost:$port" "$C/workers")
assert_eq "$code" 200 "localhost is fine"
out=$(raw "$port" '
s = conn()
s.sendall(b"GET /workers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
print(response(s).split("\r\n")[0])')
assert_eq "$out" "HTTP/1.1 400 Bad Request" "two Content-Length headers are 400"

# The allow-list is configurable.
kill "$CATALOG_PID"; wait "$CATALOG_PID" 2>/dev/null || true
rm -f "$T/catalog.port"
RBEE_ALLOWED_ORIGINS=https://ui.example RBEE_ALLOWED_HOSTS=catalog.internal \
	"$BIN/rbee-catalog" --dir "$RBEE_SRC/tests/catalog/fixtures/catalog" --port 0 \
	--port-file "$T/catalog.port" >>"$T/catalog.log" 2>&1 &
track $!
C="http://127.0.0.1:$(wait_port_file "$T/catalog.port")"
wait_for curl -sf "$C/health" || fail "catalog did not start"
h=$(hdrs -H 'Origin: https://ui.example' "$C/health")
assert_contains "$h" "Access-Control-Allow-Origin: https://ui.example" "RBEE_ALLOWED_ORIGINS replaces the list"
h=$(hdrs -H 'Origin: http://localhost:7836' "$C/health")
assert_not_contains "$h" "Access-Control-Allow-Origin" "the defaults are gone then"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: catalog.internal' "$C/workers")
assert_eq "$code" 200 "RBEE_ALLOWED_HOSTS adds a name"
assert_eq "$(curl -s "$C/health" | jq -r .status)" ok "the catalog still answers"
pass
