#!/usr/bin/env bash
# Security defaults: no token, no non-loopback bind; the token guards everything but /health;
# bodies are capped.
. "$RBEE_SRC/tests/lib.sh"

set +e
out=$("$BIN/rbee-hive" --bind 0.0.0.0 --port 0 2>&1); rc=$?
set -e
assert_eq "$rc" 2 "a non-loopback bind without a token is refused"
assert_contains "$out" "without a token" "and says why"

printf 's3cret-token\n' >"$T/token"
chmod 600 "$T/token"
start_hive --token-file "$T/token"
r=$(http POST /v1/shutdown)
assert_eq "${r%% *}" 401 "shutdown without the token is 401"
assert_eq "$(jq -r .code <<<"${r#* }")" unauthorized "with a JSON error"
code=$(curl -s -o "$T/wrong.json" -w '%{http_code}' -X POST -H 'Authorization: Bearer wrong' "$HIVE_URL/v1/jobs" -d '{}')
assert_eq "$code" 401 "a wrong token is refused for job submission"
assert_contains "$(jq -r .error "$T/wrong.json")" "token was refused" "and the error says the token was wrong, not missing"
code=$(curl -s -o /dev/null -w '%{http_code}' "$HIVE_URL/v1/info")
assert_eq "$code" 401 "reads need the token too"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret-token' "$HIVE_URL/v1/info")
assert_eq "$code" 200 "and pass with it"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "/health needs no token"
head -c 2000000 /dev/zero | tr '\0' 'x' >"$T/big"
code=$(curl -s -o "$T/big.out" -w '%{http_code}' -X POST -H 'Authorization: Bearer s3cret-token' \
	--data-binary @"$T/big" "$HIVE_URL/v1/jobs")
assert_eq "$code" 413 "an oversized body is 413"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer s3cret-token' "$HIVE_URL/v1/shutdown")
assert_eq "$code" 202 "shutdown with the token is accepted"
WAIT_S=10 wait_for bash -c "! kill -0 $HIVE_PID" || fail "the hive did not stop after /v1/shutdown"
ok "the hive stopped"
pass
