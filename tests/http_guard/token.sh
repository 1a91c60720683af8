#!/usr/bin/env bash
# With a token, every route but /health needs it (job lists, streams, build output and worker
# logs can hold paths, hashes and secrets); long tokens are taken whole or refused at start,
# never cut; the keeper CLI sends the token on every request.
. "$RBEE_SRC/tests/lib.sh"

tok=$(head -c 600 /dev/urandom | base64 -w0 | tr -d '/+=' | head -c 600)
[ ${#tok} -eq 600 ] || fail "could not make a 600-byte token"
printf '%s\n' "$tok" >"$T/token"
chmod 600 "$T/token"
start_hive --token-file "$T/token"
mkdir -p "$RBEE_HOME/logs"
echo "secret build line" >"$RBEE_HOME/logs/w-1.log"

for path in /v1/info /v1/capabilities /capabilities /v1/backends /v1/jobs /v1/workers \
	"/v1/workers/w-1/logs?tail=5" "/v1/workers/w-1/logs?follow=1" /v1/heartbeats/stream \
	/v1/jobs/job-00000000-0000-4000-8000-000000000000/stream; do
	code=$(curl -s -o "$T/r" -w '%{http_code}' --max-time 5 "$HIVE_URL$path")
	assert_eq "$code" 401 "GET $path without the token is 401"
done
assert_eq "$(jq -r .code "$T/r")" unauthorized "with a JSON error"
assert_not_contains "$(curl -s "$HIVE_URL/v1/workers/w-1/logs")" "secret build line" "no log line leaks"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${tok:0:255}" "$HIVE_URL/v1/jobs")
assert_eq "$code" 401 "the token's first 255 bytes are not the token (nothing was cut)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${tok}x" "$HIVE_URL/v1/jobs")
assert_eq "$code" 401 "nor is a longer one"
code=$(curl -s -o "$T/r" -w '%{http_code}' -H "Authorization: Bearer $tok" "$HIVE_URL/v1/workers/w-1/logs?tail=5")
assert_eq "$code" 200 "with the whole 600-byte token reads work"
assert_eq "$(cat "$T/r")" "secret build line" "and return the log"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "/health needs no token"

# The keeper sends the token on every request: plain GETs, submits and streams.
out=$(RBEE_API_TOKEN=$tok "$BIN/rbee" hive status 2>&1) || fail "rbee hive status with the token: $out"
assert_contains "$out" "token required" "rbee hive status (GET /v1/info) works with the token"
out=$(RBEE_API_TOKEN=$tok "$BIN/rbee" hive check 2>&1) || fail "rbee hive check with the token: $out"
ok "rbee hive check (submit + stream) works with the token"
out=$(RBEE_API_TOKEN=$tok "$BIN/rbee" worker logs w-1 --tail 5 2>&1) || fail "rbee worker logs with the token: $out"
assert_contains "$out" "secret build line" "rbee worker logs (a read of a log) sends the token"
set +e
out=$("$BIN/rbee" hive status 2>&1); rc=$?
set -e
assert_ne "$rc" 0 "without it the CLI fails"
stop_hive

# A token over the limit is refused at start, by name; never cut.
long=$(head -c 1500 /dev/zero | tr '\0' 'a')
set +e
out=$(RBEE_API_TOKEN=$long "$BIN/rbee-hive" --port 0 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "a 1500-byte RBEE_API_TOKEN stops the start"
assert_contains "$out" "RBEE_API_TOKEN is 1500 bytes long; the limit is 1023" "and says why"
printf '%s' "$long" >"$T/long"
set +e
out=$("$BIN/rbee-hive" --port 0 --token-file "$T/long" 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "so does a 1500-byte token file"
assert_contains "$out" "longer than 1023 bytes" "and says why"

# A token file other users can read (builds run as other uids of this machine) is refused.
printf 'readable-token\n' >"$T/readable"
chmod 644 "$T/readable"
set +e
out=$("$BIN/rbee-hive" --port 0 --token-file "$T/readable" 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "a token file readable by others stops the start"
assert_contains "$out" "readable by other users (mode 0644): chmod 600 it" "and says how to fix it"

# Started again with the token in the environment: same rules.
RBEE_API_TOKEN=$tok start_hive
code=$(curl -s -o /dev/null -w '%{http_code}' "$HIVE_URL/v1/info")
assert_eq "$code" 401 "RBEE_API_TOKEN guards reads as well"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$HIVE_URL/v1/info")
assert_eq "$code" 200 "and takes the whole token"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers"
pass
