#!/usr/bin/env bash
# Web pages cannot drive the hive: a cross-origin POST (text/plain, the kind any page sends
# without asking) is refused, so is /v1/shutdown from a foreign Origin, a body that is not
# JSON, a Host that is not the hive's (DNS rebinding), ambiguous framing and \u0000 in JSON.
# An origin in --allowed-origins works and gets CORS answers.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/http_guard/guard_lib.sh"

start_hive --allowed-origins "http://localhost:7836, https://ui.example" --allowed-hosts hive.internal
njobs() { curl -sf "$HIVE_URL/v1/jobs" | jq '.jobs | length'; }
body='{"operation":"hive_check"}'

# post ORIGIN CONTENT_TYPE PATH [BODY]: "STATUS CODE" and the body in $T/r
post() {
	local args=(-s -o "$T/r" -w '%{http_code}' -X POST)
	[ -n "$1" ] && args+=(-H "Origin: $1")
	[ -n "$2" ] && args+=(-H "Content-Type: $2")
	[ -n "${4:-}" ] && args+=(--data-binary "$4")
	echo "$(curl "${args[@]}" "$HIVE_URL$3") $(jq -r .code "$T/r" 2>/dev/null)"
}

out=$(post https://evil.example text/plain /v1/jobs "$body")
assert_eq "$out" "403 forbidden" "a cross-origin text/plain POST /v1/jobs is refused"
assert_contains "$(jq -r .error "$T/r")" "web origin 'https://evil.example' are not allowed" \
	"and the error names the origin"
out=$(post "" text/plain /v1/jobs "$body")
assert_eq "$out" "415 unsupported_media_type" "a text/plain body is refused even without an Origin"
assert_contains "$(jq -r .error "$T/r")" "Content-Type: application/json" "and says what to send"
out=$(post "" application/x-www-form-urlencoded /v1/jobs "$body")
assert_eq "$out" "415 unsupported_media_type" "so is a form body"
out=$(post "" "" /v1/jobs "$body")
assert_eq "$out" "415 unsupported_media_type" "so is a body without Content-Type"
out=$(post null application/json /v1/jobs "$body")
assert_eq "$out" "403 forbidden" "Origin: null (sandboxed pages, file://) is foreign too"
assert_eq "$(njobs)" 0 "no refused request created a job"

out=$(post https://evil.example text/plain /v1/shutdown "x")
assert_eq "$out" "403 forbidden" "POST /v1/shutdown from a foreign origin is refused"
out=$(post https://evil.example "" /v1/shutdown)
assert_eq "$out" "403 forbidden" "also without a body"
sleep 0.5
kill -0 "$HIVE_PID" 2>/dev/null || fail "the hive stopped after a cross-origin /v1/shutdown"
ok "the hive is still running"

out=$(post http://localhost:7836 application/json /v1/jobs "$body")
assert_eq "${out%% *}" 201 "an allowed origin submits a job"
hdrs=$(curl -s -D - -o /dev/null -H 'Origin: https://ui.example/' "$HIVE_URL/v1/jobs" | tr -d '\r')
assert_contains "$hdrs" "Access-Control-Allow-Origin: https://ui.example/" "its answers carry CORS headers"
hdrs=$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: http://localhost:7836' \
	-H 'Access-Control-Request-Method: POST' "$HIVE_URL/v1/jobs" | tr -d '\r')
assert_contains "$hdrs" "HTTP/1.1 204" "a preflight from an allowed origin is 204"
assert_contains "$hdrs" "Access-Control-Allow-Headers: Authorization, Content-Type" "naming the headers"
code=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://evil.example' \
	-H 'Access-Control-Request-Method: POST' "$HIVE_URL/v1/jobs")
assert_eq "$code" 403 "a preflight from a foreign origin is refused"

# DNS rebinding: evil.example re-pointed at 127.0.0.1 sends Host: evil.example.
host() { curl -s -o "$T/r" -w '%{http_code}' -H "Host: $1" "$HIVE_URL/v1/jobs"; }
assert_eq "$(host "evil.example:$HIVE_PORT")" 403 "a foreign Host is refused"
assert_contains "$(jq -r .error "$T/r")" "Host 'evil.example:$HIVE_PORT' is not a name of this hive" \
	"and the error says why"
assert_eq "$(host evil.example)" 403 "with or without a port"
assert_eq "$(host "localhost:$HIVE_PORT")" 200 "localhost is a name of a loopback hive"
assert_eq "$(host "LOCALHOST.:$HIVE_PORT")" 200 "in any case, with a final dot"
assert_eq "$(host "127.0.0.1:$HIVE_PORT")" 200 "so is its address"
assert_eq "$(host "[::1]:$HIVE_PORT")" 200 "and [::1]"
assert_eq "$(host "$(hostname)")" 200 "and the machine's hostname"
assert_eq "$(host "hive.internal:$HIVE_PORT")" 200 "and what --allowed-hosts adds"
assert_eq "$(host "127.0.0.2:$HIVE_PORT")" 403 "another address is not"

# Framing: two Content-Length headers, or one beside Transfer-Encoding (request smuggling).
out=$(raw "$HIVE_PORT" '
s = conn()
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
          b"Content-Length: 26\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
          b"{\"operation\":\"hive_check\"}")
print(response(s))')
assert_contains "$out" "HTTP/1.1 400" "two Content-Length headers are 400"
assert_contains "$out" "more than one Content-Length" "and the error says so"
out=$(raw "$HIVE_PORT" '
s = conn()
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
          b"Content-Length: 26\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
          b"1a\r\n{\"operation\":\"hive_check\"}\r\n0\r\n\r\n")
print(response(s))')
assert_contains "$out" "HTTP/1.1 400" "Content-Length with Transfer-Encoding is 400"

# \u0000 would cut the value for every C reader of it.
r=$(http POST /v1/jobs '{"operation":"hive_check","hive_id":"local\u0000host"}')
assert_eq "${r%% *}" 400 "\\u0000 in a JSON string is 400"
assert_contains "$r" "NUL" "and the error names it"
r=$(http POST /v1/jobs '{"operation\u0000x":"hive_check"}')
assert_eq "${r%% *}" 400 "also in a key"
r=$(http POST /v1/jobs $'{"operation":"hive_check","hive_id":"\xff"}')
assert_eq "${r%% *}" 400 "invalid UTF-8 in a request is 400"

assert_eq "$(njobs)" 1 "only the allowed origin's job exists"
r=$(http GET /health)
assert_eq "$r" "200 ok" "the hive still answers"
pass
