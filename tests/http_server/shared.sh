#!/usr/bin/env bash
# rbee-catalog and the hive answer from one server layer (core/lib/rb_server.c): the same
# guard gives the same JSON error from both (only the server's name differs), the catalog
# keeps its own Hono-compatible answers (no Cache-Control, CORS with credentials, Allow on
# 405, "Worker not found"), and its error bodies are valid JSON even for a path that is not
# UTF-8 (the shared layer's error writer makes every string UTF-8; the catalog's own did not).
. "$RBEE_SRC/tests/lib.sh"

cp -r "$RBEE_SRC/tests/catalog/fixtures/catalog" "$T/cat"
start_catalog "$T/cat"
start_hive
CPORT=${CATALOG_URL##*:}

# answer PORT REQUEST: the raw answer to one request.
answer() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
sys.stdout.buffer.write(data)
PY
}
body() { sed -n '/^\r$/,$p' | tail -n +2; }

req='GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
c=$(answer "$CPORT" "$req" | body)
h=$(answer "$HIVE_PORT" "$req" | body)
assert_eq "$c" '{"error":"the request has more than one Host header: send exactly one","code":"invalid_request"}' \
	"rbee-catalog refuses two Host headers with the layer's JSON error"
assert_eq "$h" "$c" "the hive's answer is the same bytes"

req='GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n'
c=$(answer "$CPORT" "$req" | body)
h=$(answer "$HIVE_PORT" "$req" | body)
assert_eq "$c" "{\"error\":\"Host 'evil.example' is not a name of this catalog server: use its address, or add the name to --allowed-hosts (RBEE_ALLOWED_HOSTS)\",\"code\":\"forbidden\"}" \
	"rbee-catalog's foreign-Host error"
assert_eq "${h/this hive/this catalog server}" "$c" "the hive's differs only by its name"

# The catalog's own answers, as the Hono catalog gave them.
a=$(answer "$CPORT" 'POST /workers HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost:7836\r\nConnection: close\r\n\r\n')
assert_contains "$a" "HTTP/1.1 405" "POST on the catalog is 405"
assert_contains "$a" "Allow: GET, HEAD, OPTIONS" "with Allow"
assert_contains "$a" "Access-Control-Allow-Credentials: true" "and the catalog's CORS headers"
assert_not_contains "$a" "Cache-Control" "and no Cache-Control (the hive's policy only)"
assert_eq "$(body <<<"$a")" "{\"error\":\"method 'POST' is not allowed on '/workers' (the catalog is read-only: use GET)\",\"code\":\"method_not_allowed\"}" \
	"the 405 body"
assert_eq "$(answer "$CPORT" 'GET /workers/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' | body)" \
	'{"error":"Worker not found"}' "an unknown worker is the Hono 404"
assert_eq "$(answer "$CPORT" 'GET /workers/nope/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' | body)" \
	'{"error":"Worker not found"}' "so is a path below an unknown worker"

# A path that is not UTF-8: the error names it, and stays JSON.
answer "$CPORT" 'GET /%FF%FE HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' | body >"$T/bad.json"
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1],"rb").read()); assert d["code"]=="not_found", d' "$T/bad.json" ||
	fail "rbee-catalog's 404 for a non-UTF-8 path is not valid JSON: $(od -c "$T/bad.json" | head -3)"
ok "rbee-catalog's error for a non-UTF-8 path is valid JSON"
assert_eq "$(curl -s "$CATALOG_URL/health" | jq -r .status)" ok "the catalog still answers"
pass
